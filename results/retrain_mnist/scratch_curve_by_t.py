"""Held-out and training loss along the run's EMA snapshots, split by t: L_simple and the min-SNR-5 weighted loss."""
import sys, torch, ddim_edu as de
from pathlib import Path
torch.set_num_threads(2)
run = Path(sys.argv[1]); n, draws = 500, 4
train_digits, _ = de.data.load_mnist("train"); test_digits, _ = de.data.load_mnist("test")
gen = de.env.generator(1)
x_seen = train_digits[torch.randperm(len(train_digits), generator=gen)[:n]]; x_new = test_digits[:n]
model0, sched, _ = de.train.load_model(str(run))
ts = [torch.randint(0, sched.T, (n,), generator=gen) for _ in range(draws)]
es = [de.env.randn(x_seen.shape, gen) for _ in range(draws)]
ab = sched.alpha_bar.double(); snr = ab / (1 - ab); w = torch.clamp(snr, max=5) / snr
bands = [(0, 100), (100, 300), (300, 1000)]
print("step | L_simple train / held-out | min-SNR train / held-out | held-out L_simple t<100 / 100-300 / >=300")
for d in sorted((run / "snapshots").iterdir()):
    m, _, _ = de.train.load_model(str(d)); m.eval()
    out = {}
    for name, x in (("train", x_seen), ("held", x_new)):
        ls = []; 
        with torch.no_grad():
            for t_, e_ in zip(ts, es):
                ls.append(de.train.diffusion_loss(m, x, sched, t=t_, noise=e_, per_example=True)[0].double())
        L = torch.stack(ls); T = torch.stack(ts)
        out[name] = (L.mean().item(), (L * w[T]).mean().item(), [L[(T >= a) & (T < b)].mean().item() for a, b in bands])
    print(f"{d.name[5:].lstrip('0')} | {out['train'][0]:.5f} / {out['held'][0]:.5f} | {out['train'][1]:.5f} / {out['held'][1]:.5f} | "
          + " / ".join(f"{v:.5f}" for v in out['held'][2]) + "  (train " + " / ".join(f"{v:.5f}" for v in out['train'][2]) + ")", flush=True)
