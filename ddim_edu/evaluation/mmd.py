r"""The estimator behind KID: MMD²_u with the cubic kernel k(x, y) = (xᵀy / d + 1)³, its
delete-one jackknife standard error, and its stratified form.

MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y) (Gretton et al. 2012, JMLR, Lemma 6). The
U-statistic MMD²_u (eq. 3) averages k over the distinct pairs within each set, which is
unbiased when each set is an i.i.d. draw. A set drawn *stratified*, with a fixed number of
rows per class (the course's 500 held-out digits are 50 of each), is not: two of its rows share
a class less often than two i.i.d. digits do (49/499 instead of 1/10), and same-class pairs
have the larger kernel values, so the plain within-set average is too low, by
(P_sample(same class) − Σ_c w_c²)(k̄_same − k̄_diff), about 2×10⁻³ for the held-out digits
with the course classifier's features. Given the classes, the within-set term is instead

    W = Σ_{c, c'} w_c w_c' · mean of k over the distinct pairs with one row in c and one in c',

with w_c the class shares (n_c / n), which is unbiased for the mixture Σ_c w_c P_c; the cross
term, a plain mean over all pairs, already is. One class for all rows gives MMD²_u exactly.

The standard error is the two-sample delete-one jackknife (Arvesen 1969), taken within each
class for a stratified set: var = Σ_sets Σ_c (n_c − 1)/n_c Σ_{i∈c} (θ₋ᵢ − θ̄₋_c)², with the class
shares held fixed when a row is left out. Everything is float64 on the CPU.

For two sample sets A and B measured against one reference R, with the i-th rows of A and B
paired (made from the same x_T), the difference D = MMD²_u(A, R) − MMD²_u(B, R) drops R's
within-set term, and its jackknife leaves out a pair (a_i, b_i) together, or a reference row:
var(D) = (n − 1)/n Σ_i (D₋ᵢ − D̄₋)² + Σ_c (m_c − 1)/m_c Σ_{j∈c} (D₋ⱼ − D̄₋_c)². What the two
sets share through their common x_T cancels in D₋ᵢ, so this error is far smaller than
√(se_A² + se_B²) when the pairs are alike. With a scale c on the second, D_c = MMD²_u(A, R) −
c·MMD²_u(B, R) ("is A within c times B's distance?") keeps (1 − c)·W_R, R's within-set term, and
the same jackknife applies; c = 0 gives MMD²_u(A, R) and its own error.
"""
from __future__ import annotations

import math

import torch


def _class_sums(a: torch.Tensor, b: torch.Tensor, onehot_b: torch.Tensor, same: bool, chunk: int = 1024):
    """s[i, c] = Σ_{j in class c} k(a_i, b_j) (without j = i when ``same``), in row blocks so that a
    5,000-row set never needs a 5,000² matrix at once. Returns a float64 tensor [rows of a, classes]."""
    d = a.shape[1]
    out = []
    for i in range(0, a.shape[0], chunk):
        block = (a[i:i + chunk] @ b.T / d + 1.0) ** 3
        if same:
            rows = torch.arange(block.shape[0])
            block[rows, rows + i] = 0.0
        out.append(block @ onehot_b)
    return torch.cat(out)


def _onehot(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(one-hot [n, C] float64 over the classes present, class index per row, rows per class)."""
    classes, index = torch.unique(labels, return_inverse=True)
    onehot = torch.nn.functional.one_hot(index, len(classes)).to(torch.float64)
    return onehot, index, onehot.sum(0)


def _within(x: torch.Tensor, labels: torch.Tensor, jackknife: bool):
    """W, the stratified within-set mean of k (module docstring), and W₋ᵢ − W for every row."""
    onehot, cls, n_c = _onehot(labels)
    s = _class_sums(x, x, onehot, same=True)                 # [n, C]
    S = onehot.T @ s                                         # S[c, c']: sum over distinct pairs
    pairs = torch.outer(n_c, n_c) - torch.diag(n_c)
    w = n_c / n_c.sum()
    M = S / pairs
    value = float((torch.outer(w, w) * M).sum())
    if not jackknife:
        return value, None
    nc_i = n_c[cls]                                          # own-class size per row
    same = onehot.bool()
    # leaving row i (class c) out: S[c, c'] loses s[i, c'] (twice when c' = c), n_c drops by one
    M_out = torch.where(same, (S[cls] - 2 * s) / ((nc_i - 1) * (nc_i - 2))[:, None],
                        (S[cls] - s) / ((nc_i - 1)[:, None] * n_c[None, :]))
    weight = w[cls][:, None] * w[None, :] * torch.where(same, 1.0, 2.0)
    return value, (weight * (M_out - M[cls])).sum(1)


def _cross_shift(h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """X₋ᵢ − X for the cross term X = Σ_c w_c · mean_{i∈c} h_i (= the plain mean of h, h_i the mean
    of k(x_i, ·) over the other set), class shares held fixed."""
    onehot, cls, n_c = _onehot(labels)
    mean_c = (onehot.T @ h) / n_c
    w = n_c / n_c.sum()
    return w[cls] * (mean_c[cls] - h) / (n_c[cls] - 1)


def _stratified_var(theta_out: torch.Tensor, labels: torch.Tensor) -> float:
    """Σ_c (n_c − 1)/n_c Σ_{i∈c} (θ₋ᵢ − mean_c θ₋)²: the delete-one jackknife within each class."""
    onehot, cls, n_c = _onehot(labels)
    centred = theta_out - ((onehot.T @ theta_out) / n_c)[cls]
    return float((((n_c - 1) / n_c)[cls] * centred.pow(2)).sum())


def mmd2(a: torch.Tensor, b: torch.Tensor, labels_a: torch.Tensor | None = None,
         labels_b: torch.Tensor | None = None, with_stderr: bool = False):
    """MMD²_u of float64 features a [n, d] and b [m, d] (module docstring); with ``labels_a`` /
    ``labels_b`` (int64 [n] / [m], or None for one class) the stratified within-set terms. With
    ``with_stderr`` also the jackknife standard error (nan when a class has fewer than 3 rows)."""
    labels_a = torch.zeros(a.shape[0], dtype=torch.long) if labels_a is None else labels_a
    labels_b = torch.zeros(b.shape[0], dtype=torch.long) if labels_b is None else labels_b
    ones = lambda x: torch.ones(x.shape[0], 1, dtype=torch.float64)
    cross_a = _class_sums(a, b, ones(b), same=False)[:, 0] / b.shape[0]     # h_i = mean_j k(a_i, b_j)
    cross_b = _class_sums(b, a, ones(a), same=False)[:, 0] / a.shape[0]     # g_j = mean_i k(a_i, b_j)
    jack = with_stderr and min(int(torch.unique(l, return_counts=True)[1].min()) for l in (labels_a, labels_b)) >= 3
    wa, dwa = _within(a, labels_a, jack)
    wb, dwb = _within(b, labels_b, jack)
    value = wa + wb - 2 * float(cross_a.mean())
    if not with_stderr:
        return value
    if not jack:
        return value, math.nan                   # leaving one out of 2 rows of a class leaves no pair
    var = (_stratified_var(dwa - 2 * _cross_shift(cross_a, labels_a), labels_a)
           + _stratified_var(dwb - 2 * _cross_shift(cross_b, labels_b), labels_b))
    return value, math.sqrt(var)


def mmd2_difference(a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor, labels_ref: torch.Tensor | None = None,
                    scale: float = 1.0, parts: bool = False):
    """MMD²_u(a, ref) − scale · MMD²_u(b, ref) for float64 features a, b [n, d] whose i-th rows are
    paired and ref [m, d] (``labels_ref``: its classes when stratified), and the paired jackknife
    standard error of the module docstring (nan when n or a class of ref has fewer than 3 rows).
    With ``parts`` also the error's two parts, (value, stderr, from the pairs, from the reference
    rows), stderr² being the sum of their squares: the first shrinks as 1/√n with more samples,
    the second is the reference's and does not."""
    labels_ref = torch.zeros(ref.shape[0], dtype=torch.long) if labels_ref is None else labels_ref
    one_class = torch.zeros(a.shape[0], dtype=torch.long)
    ones = lambda x: torch.ones(x.shape[0], 1, dtype=torch.float64)
    h_a = _class_sums(a, ref, ones(ref), same=False)[:, 0] / ref.shape[0]    # mean_j k(a_i, r_j)
    h_b = _class_sums(b, ref, ones(ref), same=False)[:, 0] / ref.shape[0]
    g_a = _class_sums(ref, a, ones(a), same=False)[:, 0] / a.shape[0]        # mean_i k(a_i, r_j)
    g_b = _class_sums(ref, b, ones(b), same=False)[:, 0] / b.shape[0]
    jack = a.shape[0] >= 3 and int(torch.unique(labels_ref, return_counts=True)[1].min()) >= 3
    wa, dwa = _within(a, one_class, jack)
    wb, dwb = _within(b, one_class, jack)
    wr, dwr = _within(ref, labels_ref, jack) if scale != 1.0 else (0.0, None)   # R's own term cancels at c = 1
    value = wa - scale * wb + (1.0 - scale) * wr - 2 * (float(h_a.mean()) - scale * float(h_b.mean()))
    if not jack:
        return (value, math.nan, math.nan, math.nan) if parts else (value, math.nan)
    pair_shift = (dwa - 2 * _cross_shift(h_a, one_class)) - scale * (dwb - 2 * _cross_shift(h_b, one_class))
    ref_shift = -2 * (_cross_shift(g_a, labels_ref) - scale * _cross_shift(g_b, labels_ref))
    if dwr is not None:
        ref_shift = ref_shift + (1.0 - scale) * dwr
    var_pairs, var_ref = _stratified_var(pair_shift, one_class), _stratified_var(ref_shift, labels_ref)
    stderr = math.sqrt(var_pairs + var_ref)
    return (value, stderr, math.sqrt(var_pairs), math.sqrt(var_ref)) if parts else (value, stderr)
