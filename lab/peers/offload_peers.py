#!/usr/bin/env python3
"""Optimizer-state swap throughput of DeepSpeed's async I/O op (the peer of strata's offload engine).

    python3 lab/peers/offload_peers.py --path DIR --slot-bytes N --chunks C
        [--steps 2] [--queue-depth 8] [--block-size 1MiB] [--aio-queue-depth 8]
        [--aio-threads 1] [--json OUT] [--keep] [--no-install]

The state file mirrors strata's layout: a 4096-byte header, then per chunk two
slots A and B of --slot-bytes each (a multiple of 4096):

    offset(position p, slot s) = 4096 + (s*C + p) * slot_bytes

(all A slots, then all B slots; strata stores the chunks last first, and a step visits
them last first, so it walks positions 0, 1, 2, ... of each region; so does this script).

Step t (t = 1..S) reads slot (t-1)%2 and writes slot t%2 of every chunk, in
chunk order. The I/O goes through DeepSpeed's `aio_handle`
(`deepspeed.ops.op_builder.AsyncIOBuilder().load()`, the op ZeRO-Infinity uses
to swap to NVMe): O_DIRECT, libaio, page-locked buffers from the handle's
`new_cpu_locked_tensor`. As in DeepSpeed's pipelined optimizer swapper there is
one handle for reads and one for writes. The --queue-depth Q buffers are split
into two sets of Q/2 chunks: while the write handle writes batch k from one set,
the read handle reads batch k+1 into the other, then the script waits on both.
At most Q chunks are in flight and Q buffers are allocated, whatever --chunks is.
(Q = 1: one buffer, read then write, no overlap.) The script does no compute
between read and write; it checks a stamp at both ends of every chunk it reads
(chunk id and step) and writes the next stamp. DeepSpeed's aio op does not check
the results of the I/O itself.

Sequence, on a file that fallocate() created:
  1. write probe: sequential aio writes of the whole file (all 2*C slots),
     slot_bytes per op, Q ops in flight on the two handles in turn.
  2. read probe: the same, reading.
  3. init: write slot 0 of every chunk (timed separately, `init_seconds`).
  4. S swap steps, each timed.
Since the write probe has written every block, the steps see steady state (no
unwritten extents to convert), as a long training run does.

Output: one summary line on stdout, and with --json a file holding
  peer, available, deepspeed_version, torch_version, step_seconds (median),
  step_seconds_all, init_seconds, bytes_read, bytes_written (per step),
  swap_GBps = (bytes_read + bytes_written) / step_seconds,
  read_GBps_probe, write_GBps_probe,
  efficiency = (bytes_read/read_probe + bytes_written/write_probe) / step_seconds,
  and the arguments. GB = 1e9 bytes.

Exit status: 0 done; 2 bad arguments, or the directory cannot hold the file or
cannot do O_DIRECT; 3 the peer is unavailable (deepspeed cannot be installed or
imported, or the async_io op cannot be built or loaded; the reason is printed,
and with --json written as {"peer", "available": false, "reason"}); 1 any
other failure.

The first run JIT-builds the op (about 3 minutes on 2 cores; cached in
~/.cache/torch_extensions). The build needs libaio's headers and library:
`apt-get install -y libaio-dev` (Debian/Ubuntu) or `dnf install libaio-devel`.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

PEER = "deepspeed_aio"
ALIGN = 4096
HEADER_BYTES = 4096
EXIT_BAD_ARGS = 2
EXIT_UNAVAILABLE = 3
STAMP = 0x5354524154410000  # chunk stamps are STAMP ^ chunk
GB = 1e9


class Unavailable(Exception):
    pass


def parse_size(s):
    """'6295552', '6_295_552', '4K', '4KiB', '1M', '1MiB', '2G' -> bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9_]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", s)
    if not m:
        raise argparse.ArgumentTypeError("not a size: %r" % s)
    n = int(m.group(1).replace("_", ""))
    return n * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]


CHUNKS = 0  # set in main(): the region size in slots


def slot_offset(pos, slot, slot_bytes):
    # strata's layout: all A slots, then all B slots. Within a region strata stores the chunks
    # last first, and a step visits them last first (as backward produces gradients), so it
    # touches positions 0, 1, 2, ... of each region: this script walks positions in that order.
    return HEADER_BYTES + (slot * CHUNKS + pos) * slot_bytes


def fail_unavailable(reason, json_path):
    msg = "[offload_peers] %s unavailable: %s" % (PEER, reason)
    print(msg, flush=True)
    print(msg, file=sys.stderr, flush=True)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"peer": PEER, "available": False, "reason": reason}, f, indent=2)
            f.write("\n")
    sys.exit(EXIT_UNAVAILABLE)


def dist_version(dist):
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _ds_logs_to_stderr():
    """DeepSpeed logs to stdout (e.g. its SSD-endurance warning on the first write); keep stdout for our line."""
    import logging

    try:
        from deepspeed.utils import logger
    except Exception:  # noqa: BLE001
        return
    for h in logger.handlers:
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stdout:
            h.setStream(sys.stderr)


def load_aio_op():
    """Build (first time) and load DeepSpeed's async_io op. Raises Unavailable with the reason."""
    _, why = peers_env.try_import("deepspeed")
    if why:
        raise Unavailable("import deepspeed failed: %s" % why)
    try:
        from deepspeed.ops.op_builder import AsyncIOBuilder
    except Exception as e:  # noqa: BLE001
        raise Unavailable("deepspeed %s has no AsyncIOBuilder: %s" % (dist_version("deepspeed"), e))
    _ds_logs_to_stderr()
    builder = AsyncIOBuilder()
    # The build's compiler output goes to fd 1: keep stdout for the summary line.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        if not builder.is_compatible(verbose=True):
            raise Unavailable("AsyncIOBuilder.is_compatible() is False: libaio headers/library not found, or no C "
                              "compiler to test-link io_submit (Debian/Ubuntu: apt-get install -y libaio-dev; "
                              "RHEL/Fedora: dnf install libaio-devel)")
        print("[offload_peers] loading the async_io op (the first time builds it: minutes) ...",
              file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            op = builder.load(verbose=False)
        except BaseException as e:  # noqa: BLE001 - a failed JIT build may raise SystemExit or RuntimeError
            lines = [l for l in str(e).splitlines() if l.strip()]
            raise Unavailable("building/loading the async_io op failed: %s: %s"
                              % (type(e).__name__, (lines[-1] if lines else "")[:300]))
        print("[offload_peers] async_io op ready in %.1f s" % (time.perf_counter() - t0), file=sys.stderr, flush=True)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    if not hasattr(op, "aio_handle"):
        raise Unavailable("the loaded async_io op has no aio_handle")
    return op


class Swapper:
    """Two aio handles (read, write) and a fixed pool of page-locked chunk buffers."""

    def __init__(self, op, path, args):
        import torch

        self.torch = torch
        self.path = path
        self.slot_bytes = args.slot_bytes

        def handle():
            return op.aio_handle(args.block_size, args.aio_queue_depth, args.single_submit,
                                 not args.no_overlap_events, args.aio_threads)

        self.h_read = handle()
        self.h_write = handle()
        self.pending = {id(self.h_read): 0, id(self.h_write): 0}
        q = args.queue_depth
        self.batch = max(1, q // 2)
        nsets = 1 if q < 2 else 2
        example = torch.empty(0, dtype=torch.uint8)
        gen = torch.Generator().manual_seed(1234)
        self.buffers = []
        for _ in range(nsets * self.batch):
            b = self.h_read.new_cpu_locked_tensor(self.slot_bytes, example)
            # random bytes: no zero pages for a virtual disk to shortcut
            b.copy_(torch.randint(0, 256, (self.slot_bytes,), dtype=torch.uint8, generator=gen))
            self.buffers.append(b)
        self.sets = [self.buffers[i * self.batch:(i + 1) * self.batch] for i in range(nsets)]
        self.nbuffers = len(self.buffers)
        self.pinned = all(self.h_read.is_pinned(b) and self.h_write.is_pinned(b) for b in self.buffers) \
            if hasattr(self.h_read, "is_pinned") else None

    def close(self):
        for b in self.buffers:
            self.h_read.free_cpu_locked_tensor(b)
        self.buffers, self.sets = [], []
        del self.h_read, self.h_write

    # -- primitive operations
    def submit(self, handle, is_read, buf, offset):
        if is_read:
            rc = handle.async_pread(buf, self.path, offset)
        else:
            rc = handle.async_pwrite(buf, self.path, offset)
        if rc != 0:
            raise RuntimeError("aio %s of %d bytes at offset %d returned %d"
                               % ("read" if is_read else "write", buf.numel(), offset, rc))
        self.pending[id(handle)] += 1

    def wait(self, handle):
        n = self.pending[id(handle)]
        if n == 0:  # the op asserts on a wait with nothing pending
            return
        done = handle.wait()
        self.pending[id(handle)] = 0
        if done != n:
            raise RuntimeError("aio wait completed %d ops, expected %d" % (done, n))

    # -- chunk stamps: int64 words at the head and the tail of each chunk
    def stamp(self, buf, chunk, step):
        head = buf[:16].view(self.torch.int64)
        head[0] = STAMP ^ chunk
        head[1] = step
        buf[-8:].view(self.torch.int64)[0] = (STAMP ^ chunk) + step

    def check(self, buf, chunk, step):
        head = buf[:16].view(self.torch.int64).tolist()
        tail = buf[-8:].view(self.torch.int64).tolist()[0]
        want = [STAMP ^ chunk, step]
        if head != want or tail != (STAMP ^ chunk) + step:
            raise RuntimeError("chunk %d: read stamp head=%s tail=%d, expected head=%s tail=%d (the aio op "
                               "does not report I/O errors; this is how one shows)" % (chunk, head, tail, want,
                                                                                      (STAMP ^ chunk) + step))

    # -- phases
    def probe(self, is_read, nslots):
        """Sequential slot_bytes ops over slots 0..nslots-1 of the file; returns seconds."""
        offsets = [HEADER_BYTES + i * self.slot_bytes for i in range(nslots)]
        handles = [self.h_read, self.h_write][:len(self.sets)]
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, len(offsets), self.batch)):
            s = k % len(self.sets)
            self.wait(handles[s])  # the batch before last on this handle used this buffer set
            for buf, off in zip(self.sets[s], offsets[i:i + self.batch]):
                self.submit(handles[s], is_read, buf, off)
        for h in handles:
            self.wait(h)
        return time.perf_counter() - t0

    def init(self, chunks):
        """Write slot 0 of every chunk, stamped step 0."""
        t0 = time.perf_counter()
        for i in range(0, chunks, self.batch):
            batch = range(i, min(i + self.batch, chunks))
            for buf, c in zip(self.sets[0], batch):
                self.stamp(buf, c, 0)
                self.submit(self.h_write, False, buf, slot_offset(c, 0, self.slot_bytes))
            self.wait(self.h_write)
        return time.perf_counter() - t0

    def step(self, t, chunks):
        """Read slot (t-1)%2 and write slot t%2 of every chunk; returns seconds."""
        rs, ws, sb = (t - 1) % 2, t % 2, self.slot_bytes
        batches = [range(i, min(i + self.batch, chunks)) for i in range(0, chunks, self.batch)]
        t0 = time.perf_counter()
        if len(self.sets) == 1:
            buf = self.sets[0][0]
            for c in range(chunks):
                self.submit(self.h_read, True, buf, slot_offset(c, rs, sb))
                self.wait(self.h_read)
                self.check(buf, c, t - 1)
                self.stamp(buf, c, t)
                self.submit(self.h_write, False, buf, slot_offset(c, ws, sb))
                self.wait(self.h_write)
            return time.perf_counter() - t0
        for buf, c in zip(self.sets[0], batches[0]):
            self.submit(self.h_read, True, buf, slot_offset(c, rs, sb))
        self.wait(self.h_read)
        for k, batch in enumerate(batches):
            cur, nxt = self.sets[k % 2], self.sets[(k + 1) % 2]
            for buf, c in zip(cur, batch):
                self.check(buf, c, t - 1)
                self.stamp(buf, c, t)
                self.submit(self.h_write, False, buf, slot_offset(c, ws, sb))
            if k + 1 < len(batches):  # nxt is free: its writes (batch k-1) were waited for
                for buf, c in zip(nxt, batches[k + 1]):
                    self.submit(self.h_read, True, buf, slot_offset(c, rs, sb))
            self.wait(self.h_read)
            self.wait(self.h_write)
        return time.perf_counter() - t0


def check_dir(args, file_bytes):
    d = os.path.abspath(args.path)
    if not os.path.isdir(d):
        return None, "--path %s is not a directory" % d
    free = shutil.disk_usage(d).free
    if free < file_bytes + (1 << 30):
        return None, "%s has %.2f GB free; the file needs %.2f GB plus 1 GB of margin" % (d, free / GB, file_bytes / GB)
    return d, None


def create_file(path, size):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    try:  # the aio op opens with O_DIRECT and only prints to stderr when that fails
        os.close(os.open(path, os.O_RDWR | os.O_DIRECT))
    except OSError as e:
        raise OSError("cannot open %s with O_DIRECT (%s); pick a --path on a disk file system" % (path, e))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", required=True, help="directory for the state file")
    ap.add_argument("--slot-bytes", type=parse_size, required=True, help="bytes per slot, a multiple of 4096")
    ap.add_argument("--chunks", type=int, required=True, help="number of chunks (the file holds 2 slots each)")
    ap.add_argument("--steps", type=int, default=2, help="swap steps to time (median is reported)")
    ap.add_argument("--queue-depth", type=int, default=8, help="chunks in flight = chunk buffers allocated")
    ap.add_argument("--block-size", type=parse_size, default=1 << 20,
                    help="aio block size: bytes per libaio request (DeepSpeed default 1MiB)")
    ap.add_argument("--aio-queue-depth", type=int, default=8,
                    help="libaio requests in flight per op and thread (DeepSpeed default 8)")
    ap.add_argument("--aio-threads", type=int, default=1,
                    help="intra_op_parallelism: threads per handle, each op split among them (DeepSpeed default 1)")
    ap.add_argument("--single-submit", action="store_true", help="aio single_submit (DeepSpeed default off)")
    ap.add_argument("--no-overlap-events", action="store_true", help="aio overlap_events off (DeepSpeed default on)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the state file")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install deepspeed when it is missing")
    args = ap.parse_args()

    def bad(msg):
        print("[offload_peers] " + msg, file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_ARGS)

    if args.slot_bytes <= 0 or args.slot_bytes % ALIGN:
        bad("--slot-bytes must be a positive multiple of %d (got %d)" % (ALIGN, args.slot_bytes))
    if args.chunks < 1 or args.steps < 1 or args.queue_depth < 1 or args.aio_queue_depth < 1 or args.aio_threads < 1:
        bad("--chunks, --steps, --queue-depth, --aio-queue-depth and --aio-threads must be >= 1")
    if args.block_size <= 0 or args.block_size % ALIGN or args.block_size >= 1 << 31:
        bad("--block-size must be a multiple of %d below 2 GiB" % ALIGN)
    if args.slot_bytes % args.aio_threads or (args.slot_bytes // args.aio_threads) % ALIGN:
        bad("--slot-bytes / --aio-threads must be a whole multiple of %d (each thread gets an equal share)" % ALIGN)
    global CHUNKS
    CHUNKS = args.chunks
    file_bytes = HEADER_BYTES + 2 * args.chunks * args.slot_bytes
    d, why = check_dir(args, file_bytes)
    if why:
        bad(why)

    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # host buffers only: no GPU needed, none probed for
    peers_env.ensure_venv([("torch", os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0"))])
    if peers_env.try_import("deepspeed")[1] and not args.no_install:
        spec = os.environ.get("STRATA_PEERS_DEEPSPEED", "deepspeed")
        if peers_env.pip_install([spec], check=False).returncode != 0:
            fail_unavailable("pip install %s failed" % spec, args.json)
    try:
        op = load_aio_op()
    except Unavailable as e:
        fail_unavailable(str(e), args.json)

    import torch

    path = os.path.join(d, "strata_offload_peer_%d.state" % os.getpid())
    sw = None
    try:
        create_file(path, file_bytes)
        sw = Swapper(op, path, args)
        if sw.pinned is False:
            print("[offload_peers] warning: the buffers are not page-locked; the op bounces through its own",
                  file=sys.stderr, flush=True)
        nslots = 2 * args.chunks
        probe_bytes = nslots * args.slot_bytes
        log = lambda s: print("[offload_peers] " + s, file=sys.stderr, flush=True)  # noqa: E731
        log("file %s: %.3f GB, %d chunks x 2 slots x %d bytes; %d buffers" % (
            path, file_bytes / GB, args.chunks, args.slot_bytes, sw.nbuffers))
        w_s = sw.probe(False, nslots)
        log("write probe: %.3f GB in %.3f s = %.3f GB/s" % (probe_bytes / GB, w_s, probe_bytes / w_s / GB))
        r_s = sw.probe(True, nslots)
        log("read probe:  %.3f GB in %.3f s = %.3f GB/s" % (probe_bytes / GB, r_s, probe_bytes / r_s / GB))
        init_s = sw.init(args.chunks)
        log("init (slot 0 of every chunk): %.3f s" % init_s)
        times = []
        for t in range(1, args.steps + 1):
            dt = sw.step(t, args.chunks)
            times.append(dt)
            log("step %d: %.3f s = %.3f GB/s" % (t, dt, 2 * args.chunks * args.slot_bytes / dt / GB))
    except Exception as e:  # noqa: BLE001
        print("[offload_peers] failed: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        if sw is not None:
            sw.close()
        if os.path.exists(path):
            if args.keep:
                print("[offload_peers] kept %s" % path, file=sys.stderr, flush=True)
            else:
                os.unlink(path)

    step_s = statistics.median(times)
    bytes_read = bytes_written = args.chunks * args.slot_bytes
    read_bps, write_bps = probe_bytes / r_s, probe_bytes / w_s
    res = {
        "peer": PEER,
        "available": True,
        "deepspeed_version": dist_version("deepspeed"),
        "torch_version": torch.__version__,
        "step_seconds": step_s,
        "step_seconds_all": times,
        "init_seconds": init_s,
        "bytes_read": bytes_read,
        "bytes_written": bytes_written,
        "swap_GBps": (bytes_read + bytes_written) / step_s / GB,
        "read_GBps_probe": read_bps / GB,
        "write_GBps_probe": write_bps / GB,
        "efficiency": (bytes_read / read_bps + bytes_written / write_bps) / step_s,
        "probe_bytes": probe_bytes,
        "file_bytes": file_bytes,
        "buffers": sw.nbuffers,
        "buffers_pinned": sw.pinned,
        "verified": True,
        "path": d,
        "slot_bytes": args.slot_bytes,
        "chunks": args.chunks,
        "steps": args.steps,
        "queue_depth": args.queue_depth,
        "block_size": args.block_size,
        "aio_queue_depth": args.aio_queue_depth,
        "aio_threads": args.aio_threads,
        "single_submit": args.single_submit,
        "overlap_events": not args.no_overlap_events,
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print("deepspeed_aio %s: step %.3f s, swap %.3f GB/s (read %.3f GB + write %.3f GB per step); "
          "probes read %.3f GB/s, write %.3f GB/s; efficiency %.2f"
          % (res["deepspeed_version"], step_s, res["swap_GBps"], bytes_read / GB, bytes_written / GB,
             res["read_GBps_probe"], res["write_GBps_probe"], res["efficiency"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
