# The side-by-side table of docs/PERFORMANCE.md (2026-12-03): the JSON of strata bench optim,
# offload, train and swarm from the binary before the refactor (NAME-old-R.json) and after
# (NAME-new-R.json), alternated round by round. Usage: python3 summarize.py [FOLDER]
import json, os, statistics, sys, glob
d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
def get(kind, v):
    out = []
    for f in sorted(glob.glob(f'{d}/{kind}-{v}-*.json')):
        try: out.append(json.load(open(f)))
        except Exception: pass
    return out
metrics = {
 'optim': [('8-bit AdamW step, ms', lambda j: j['adamw8bit_step_ms']), ('fp32 AdamW step, ms', lambda j: j['adamw_fp32_step_ms']), ('triad, GB/s', lambda j: j['triad_GBps'])],
 'offload': [('offloaded step (256 M, q8_master_mv), s', lambda j: j['step_seconds']), ('disk efficiency', lambda j: j['disk_efficiency']), ('state moved, GB/s', lambda j: j['offload_GBps'])],
 'train': [('default shape, in memory, tok/s', lambda j: j['cases'][0]['strata_tokens_per_s']), ('default shape, on disk, tok/s', lambda j: j['cases'][0]['strata_nvme_tokens_per_s']),
           ('gpt2-small-layers, in memory, tok/s', lambda j: j['cases'][1]['strata_tokens_per_s']), ('gpt2-small-layers, on disk, tok/s', lambda j: j['cases'][1]['strata_nvme_tokens_per_s'])],
 'swarm': [('exchange, GB/s of frames (1 stream)', lambda j: j['exchange_GBps']), ('exchange_vs_raw', lambda j: j['exchange_vs_raw']), ('raw ZeroMQ + CURVE, GB/s', lambda j: j['zmq_raw_GBps'])],
}
print('| bench | figure | before (b301876): median [min, max] | after: median [min, max] | after / before |')
print('|---|---|---|---|---|')
for kind, ms in metrics.items():
    old, new = get(kind, 'old'), get(kind, 'new')
    for name, f in ms:
        try:
            a = [f(j) for j in old]; b = [f(j) for j in new]
        except Exception as e:
            print(kind, name, 'error', e); continue
        if not a or not b: continue
        ma, mb = statistics.median(a), statistics.median(b)
        fmt = lambda x: f'{x:.3g}' if abs(x) < 100 else f'{x:.0f}'
        print(f'| {kind} | {name} | {fmt(ma)} [{fmt(min(a))}, {fmt(max(a))}] | {fmt(mb)} [{fmt(min(b))}, {fmt(max(b))}] | {mb/ma:.3f} |')
