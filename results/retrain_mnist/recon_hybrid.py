"""Where along t a fine-tune loses classes in the DDIM round trip (encode -> decode, S = 50, the 500
held-out digits, course classifier): one network's ε below t_c and another's from t_c on.

    python results/retrain_mnist/recon_hybrid.py T_C [THREADS]

below: checkpoints/mnist as shipped on 2026-12-04 (results/retrain_mnist/drop2c_weights, min-SNR-5), from t_c on:
the L_simple fine-tune of it (results/retrain_mnist/gpu_lsimple_weights). Prints one JSON line.
"""
import json, sys, time
from pathlib import Path
import torch
import ddim_edu as de

ROOT = Path(__file__).resolve().parents[2]
t_c = int(sys.argv[1]); torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
below, sched, _ = de.train.load_model(str(ROOT / "results/retrain_mnist/drop2c_weights"))
above, _, _ = de.train.load_model(str(ROOT / "results/retrain_mnist/gpu_lsimple_weights"))


def eps(x, t):
    """ε̂(x_t, t): `above` where t >= t_c, `below` elsewhere (t is one timestep per row)."""
    t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
    hi = t >= t_c
    out = torch.empty_like(x)
    if hi.any():
        out[hi] = above(x[hi], t[hi])
    if (~hi).any():
        out[~hi] = below(x[~hi], t[~hi])
    return out


x0 = de.data.load_mnist("test")[0][:500]
classifier = de.evaluation.load_classifier()
start = time.time()
with torch.inference_mode():
    x_rec = de.ddim_sample(eps, de.ddim_invert(eps, x0, sched, steps=50, progress=False), sched, steps=50, progress=False)
kept = de.evaluation.class_survival(x0, x_rec, classifier)
print(json.dumps({"t_c": t_c, "class_kept": kept.value, "stderr": kept.stderr,
                  "mse": float(de.evaluation.reconstruction_mse(x_rec, x0)), "seconds": round(time.time() - start)}))
