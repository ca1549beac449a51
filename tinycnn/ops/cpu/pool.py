"""CPU kernels of max, average and adaptive-average pooling.

Every kernel takes C-contiguous ``(P, H, W)`` arrays (P = N*C planes, so NCHW and CHW inputs are
the same call) and writes into a preallocated ``out``.  ``prange`` runs over planes: a thread
owns its output plane and, in a backward, its input-gradient plane, so the scatter of a backward
is race-free and the result does not depend on the thread count.

Why the loops look the way they do (measured in README.md, "Pooling"):

* Flat indices are ``np.uintp``: Numba adds no negative-index wraparound to unsigned indices, so
  the inner loops stay affine and LLVM vectorises them (signed indices: 4x slower).
* Output row -> kernel rows -> output columns, the columns innermost and contiguous.  Padding is
  handled per row (kernel rows outside the input are skipped) and per column range: the interior
  columns, whose window lies inside the input row, run with no bounds checks; the one or two
  border columns run a scalar loop over the valid taps.
* The common windows (3x3 stride 1 or 2, 2x2 stride 2, no dilation) get their taps unrolled with
  compile-time constants: ``inline="always"`` helpers called with literals.  Each output is then
  loaded and stored once, and stride 2 is an interleaved load instead of a gather (a runtime
  tap offset made LLVM emit gathers: 30% slower).  Other windows run one pass per tap.
* Max pooling is branch-free select arithmetic.  ``v > m or v != v`` picks the first maximum in
  scan order and the last NaN, exactly as PyTorch's CPU kernel; the first valid tap of a window
  is assigned instead of compared with -inf (equivalent, and needs no typed -inf).  Indices are
  int32 flat ``h*W + w`` positions in the plane; a row pass stores the row part (one int32
  constant per tap, so the selects stay in 32-bit lanes) and adds the column part at the end.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit, prange

_U = np.uintp

# dtype of the argmax indices the max-pool kernels write: int32 halves their memory traffic;
# the op converts to int64 (PyTorch's dtype) only for ``return_indices``.
INDEX_DTYPE = np.int32


@njit(inline="always")
def _tap_range(start, d, size, k):
    """Taps ``lo <= i < hi`` (of ``k``) with ``0 <= start + i*d < size``; no division."""
    lo = 0
    while lo < k and start + lo * d < 0:
        lo += 1
    hi = lo
    while hi < k and start + hi * d < size:
        hi += 1
    return lo, hi


@njit(inline="always")
def _interior(W, OW, kw, sw, pw, dw):
    """Output columns ``[a, b)`` whose whole kernel row lies inside the input row."""
    a = min((pw + sw - 1) // sw, OW)
    b = min((W - 1 + pw - (kw - 1) * dw) // sw + 1, OW)
    return a, max(a, b)


@njit(inline="always")
def _vector_run(n, o, o_end, pos, sw, W, kh, kw, HW):
    """``n`` rounded up to whole vectors (8) when that stays inside the plane: the extra outputs
    land on border columns or the next row (both written later by the same thread) and the extra
    taps are inside this input plane.  The vector loop then needs no scalar remainder."""
    n8 = (n + 7) // 8 * 8
    if o + n8 <= o_end and pos + (n8 - 1) * sw + (kh - 1) * W + kw <= HW:
        return n8
    return n


# ------------------------------------------------------------------------------ max pooling
@njit(inline="always")
def _max_win(xf, of, jf, xs, os_, pos, n, sw, W, kh, kw):
    """Outputs ``os_ + t`` (t < n) = max of a whole ``kh x kw`` window lying inside the input;
    its top-left tap is ``xf[xs + t*sw]`` at plane position ``pos + t*sw``."""
    for t in range(n):
        m = xf[_U(xs + t * sw)]
        idx = np.int32(pos)
        for i in range(kh):
            for j in range(kw):
                if i + j > 0:
                    v = xf[_U(xs + i * W + t * sw + j)]
                    u = (v > m) | (v != v)
                    m = v if u else m
                    idx = np.int32(pos + i * W + j) if u else idx
        of[_U(os_ + t)] = m
        jf[_U(os_ + t)] = idx + np.int32(t * sw)


@njit(inline="always")
def _max_tap(xf, of, jf, xs, os_, pos, n, sw, first):
    """One tap of one kernel row for outputs ``os_ + t``: ``xf[xs + t*sw]``; stores the row
    part ``pos`` of the index (the caller adds ``t*sw``)."""
    ipos = np.int32(pos)
    for t in range(n):
        v = xf[_U(xs + t * sw)]
        if first:
            of[_U(os_ + t)] = v
            jf[_U(os_ + t)] = ipos
        else:
            m = of[_U(os_ + t)]
            u = (v > m) | (v != v)
            of[_U(os_ + t)] = v if u else m
            jf[_U(os_ + t)] = ipos if u else jf[_U(os_ + t)]


@njit(inline="always")
def _max_taps(xf, of, jf, xs, os_, pos, n, sw, first):
    # literal arguments: the branch on ``first`` folds, and stride 2 is an interleaved load
    if first:
        if sw == 1:
            _max_tap(xf, of, jf, xs, os_, pos, n, 1, True)
        elif sw == 2:
            _max_tap(xf, of, jf, xs, os_, pos, n, 2, True)
        else:
            _max_tap(xf, of, jf, xs, os_, pos, n, sw, True)
    elif sw == 1:
        _max_tap(xf, of, jf, xs, os_, pos, n, 1, False)
    elif sw == 2:
        _max_tap(xf, of, jf, xs, os_, pos, n, 2, False)
    else:
        _max_tap(xf, of, jf, xs, os_, pos, n, sw, False)


@njit(inline="always")
def _max_win32(xf, of, jf, xs, os_, pos, n, W):
    """``_max_win`` for 3x3 stride 2.  Tap 0 of output t is tap 2 of output t-1, carried in a
    register (a recurrence LLVM vectorises with a lane shift): as a load it would be a third
    stride-2 stream, which LLVM turned into a gather."""
    if n <= 0:
        return
    p0 = xf[_U(xs)]
    p1 = xf[_U(xs + W)]
    p2 = xf[_U(xs + 2 * W)]
    for t in range(n):
        b = xs + 2 * t
        m = p0
        idx = np.int32(pos)
        m, idx = _max_step(m, idx, xf[_U(b + 1)], pos + 1)
        p0 = xf[_U(b + 2)]
        m, idx = _max_step(m, idx, p0, pos + 2)
        m, idx = _max_step(m, idx, p1, pos + W)
        m, idx = _max_step(m, idx, xf[_U(b + W + 1)], pos + W + 1)
        p1 = xf[_U(b + W + 2)]
        m, idx = _max_step(m, idx, p1, pos + W + 2)
        m, idx = _max_step(m, idx, p2, pos + 2 * W)
        m, idx = _max_step(m, idx, xf[_U(b + 2 * W + 1)], pos + 2 * W + 1)
        p2 = xf[_U(b + 2 * W + 2)]
        m, idx = _max_step(m, idx, p2, pos + 2 * W + 2)
        of[_U(os_ + t)] = m
        jf[_U(os_ + t)] = idx + np.int32(t * 2)


@njit(inline="always")
def _max_step(m, idx, v, p):
    """PyTorch's update: a larger value, or any NaN (so the last NaN wins)."""
    u = (v > m) | (v != v)
    return (v if u else m), (np.int32(p) if u else idx)


@njit(inline="always")
def _max_wins(xf, of, jf, xs, os_, pos, n, sw, W, kh, kw):
    """The unrolled whole-window cases; False when the window has no such case."""
    if kh == 3 and kw == 3 and sw == 2:
        _max_win32(xf, of, jf, xs, os_, pos, n, W)
    elif kh == 3 and kw == 3 and sw == 1:
        _max_win(xf, of, jf, xs, os_, pos, n, 1, W, 3, 3)
    elif kh == 2 and kw == 2 and sw == 2:
        _max_win(xf, of, jf, xs, os_, pos, n, 2, W, 2, 2)
    else:
        return False
    return True


@njit(inline="always")
def _max_border(xf, of, jf, xb, o, h0, w0, W, i_lo, i_hi, kw, dh, dw):
    """One output whose window crosses the edge: a scalar loop over the valid taps (rows
    ``i_lo <= i < i_hi``)."""
    j_lo, j_hi = _tap_range(w0, dw, W, kw)
    idx = (h0 + i_lo * dh) * W + w0 + j_lo * dw
    m = xf[_U(xb + idx)]
    for i in range(i_lo, i_hi):
        for j in range(j_lo, j_hi):
            p = (h0 + i * dh) * W + w0 + j * dw
            m, idx = _max_step(m, idx, xf[_U(xb + p)], p)
    of[_U(o)] = m
    jf[_U(o)] = idx


@njit
def _max_plane(xf, of, jf, xb, ob, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw):
    a, b = _interior(W, OW, kw, sw, pw, dw)
    for oh in range(OH):
        h0 = oh * sh - ph
        orow = ob + oh * OW
        done = False
        if dh == 1 and dw == 1 and h0 >= 0 and h0 + kh <= H:
            pos = h0 * W + a * sw - pw
            n = _vector_run(b - a, orow + a, ob + OH * OW, pos, sw, W, kh, kw, H * W)
            done = _max_wins(xf, of, jf, xb + pos, orow + a, pos, n, sw, W, kh, kw)
        if not done:
            first = True
            for i in range(kh):
                ih = h0 + i * dh
                if ih < 0 or ih >= H:
                    continue
                for j in range(kw):
                    pos = ih * W + a * sw - pw + j * dw
                    _max_taps(xf, of, jf, xb + pos, orow + a, pos, b - a, sw, first)
                    first = False
            for t in range(b - a):
                jf[_U(orow + a + t)] += t * sw
        i_lo, i_hi = _tap_range(h0, dh, H, kh)
        for ow in range(a):
            _max_border(xf, of, jf, xb, orow + ow, h0, ow * sw - pw, W, i_lo, i_hi, kw, dh, dw)
        for ow in range(b, OW):
            _max_border(xf, of, jf, xb, orow + ow, h0, ow * sw - pw, W, i_lo, i_hi, kw, dh, dw)


@njit(parallel=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, indices):
    """``out[p, oh, ow]`` = max over its window; ``indices`` (int32) its ``h*W + w`` position.

    Every window must hold at least one input element (the op checks it)."""
    P, H, W = x.shape
    OH, OW = out.shape[1], out.shape[2]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    jf = indices.reshape(indices.size)
    for p in prange(P):
        _max_plane(xf, of, jf, p * H * W, p * OH * OW, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw)


@njit(parallel=True)
def max_pool2d_backward(grad, indices, out):
    """``out`` (P, H, W) = ``grad`` added at ``indices`` plane by plane (zeros elsewhere)."""
    P, H, W = out.shape
    HW = H * W
    OHW = grad.shape[1] * grad.shape[2]
    gf = grad.reshape(grad.size)
    jf = indices.reshape(indices.size)
    gi = out.reshape(out.size)
    for p in prange(P):
        b = p * HW
        for t in range(HW):
            gi[_U(b + t)] = 0.0
        ob = p * OHW
        for t in range(OHW):
            gi[_U(b + jf[_U(ob + t)])] += gf[_U(ob + t)]


# ------------------------------------------------------------------------------ average pooling
@njit(inline="always")
def _avg_win(xf, of, sf, xs, os_, ss, n, sw, W, kh, kw):
    """Outputs ``os_ + t`` = scale * sum of a whole window inside the input (PyTorch's order:
    row by row, left to right)."""
    for t in range(n):
        s = xf[_U(xs + t * sw)]
        for i in range(kh):
            for j in range(kw):
                if i + j > 0:
                    s += xf[_U(xs + i * W + t * sw + j)]
        of[_U(os_ + t)] = s * sf[_U(ss + t)]


@njit(inline="always")
def _avg_tap(xf, of, xs, os_, n, sw, first):
    """Add one tap ``xf[xs + t*sw]`` to outputs ``os_ + t`` (unscaled; assign if first)."""
    for t in range(n):
        if first:
            of[_U(os_ + t)] = xf[_U(xs + t * sw)]
        else:
            of[_U(os_ + t)] += xf[_U(xs + t * sw)]


@njit(inline="always")
def _avg_taps(xf, of, xs, os_, n, sw, first):
    if first:
        if sw == 1:
            _avg_tap(xf, of, xs, os_, n, 1, True)
        elif sw == 2:
            _avg_tap(xf, of, xs, os_, n, 2, True)
        else:
            _avg_tap(xf, of, xs, os_, n, sw, True)
    elif sw == 1:
        _avg_tap(xf, of, xs, os_, n, 1, False)
    elif sw == 2:
        _avg_tap(xf, of, xs, os_, n, 2, False)
    else:
        _avg_tap(xf, of, xs, os_, n, sw, False)


@njit(inline="always")
def _avg_win32(xf, of, sf, xs, os_, ss, n, W):
    """``_avg_win`` for 3x3 stride 2, with tap 0 carried from the previous output's tap 2 (see
    ``_max_win32``); the additions keep PyTorch's order."""
    if n <= 0:
        return
    p0 = xf[_U(xs)]
    p1 = xf[_U(xs + W)]
    p2 = xf[_U(xs + 2 * W)]
    for t in range(n):
        b = xs + 2 * t
        s = p0 + xf[_U(b + 1)]
        p0 = xf[_U(b + 2)]
        s = s + p0 + p1 + xf[_U(b + W + 1)]
        p1 = xf[_U(b + W + 2)]
        s = s + p1 + p2 + xf[_U(b + 2 * W + 1)]
        p2 = xf[_U(b + 2 * W + 2)]
        of[_U(os_ + t)] = (s + p2) * sf[_U(ss + t)]


@njit(inline="always")
def _avg_wins(xf, of, sf, xs, os_, ss, n, sw, W, kh, kw):
    if kh == 3 and kw == 3 and sw == 2:
        _avg_win32(xf, of, sf, xs, os_, ss, n, W)
    elif kh == 3 and kw == 3 and sw == 1:
        _avg_win(xf, of, sf, xs, os_, ss, n, 1, W, 3, 3)
    elif kh == 2 and kw == 2 and sw == 2:
        _avg_win(xf, of, sf, xs, os_, ss, n, 2, W, 2, 2)
    else:
        return False
    return True


@njit
def _avg_plane(xf, of, sf, xb, ob, H, W, OH, OW, kh, kw, sh, sw, ph, pw):
    a, b = _interior(W, OW, kw, sw, pw, 1)
    for oh in range(OH):
        h0 = oh * sh - ph
        orow = ob + oh * OW
        srow = oh * OW
        done = False
        if h0 >= 0 and h0 + kh <= H:
            pos = h0 * W + a * sw - pw
            n = _vector_run(b - a, orow + a, ob + OH * OW, pos, sw, W, kh, kw, H * W)
            done = _avg_wins(xf, of, sf, xb + pos, orow + a, srow + a, n, sw, W, kh, kw)
        if not done:
            first = True
            for i in range(kh):
                ih = h0 + i
                if ih < 0 or ih >= H:
                    continue
                for j in range(kw):
                    _avg_taps(xf, of, xb + ih * W + a * sw - pw + j, orow + a, b - a, sw, first)
                    first = False
            for t in range(a, b):
                of[_U(orow + t)] *= sf[_U(srow + t)]
        i_lo, i_hi = _tap_range(h0, 1, H, kh)
        zero = sf[_U(srow)] * 0  # a typed zero: the scales are finite
        for ow in range(a):
            w0 = ow * sw - pw
            _avg_border(xf, of, sf, xb, orow + ow, srow + ow, h0, w0, W, i_lo, i_hi, kw, zero)
        for ow in range(b, OW):
            w0 = ow * sw - pw
            _avg_border(xf, of, sf, xb, orow + ow, srow + ow, h0, w0, W, i_lo, i_hi, kw, zero)


@njit(inline="always")
def _avg_border(xf, of, sf, xb, o, so, h0, w0, W, i_lo, i_hi, kw, zero):
    """One output whose window crosses the edge: a scalar sum over the valid taps, in
    PyTorch's order (from 0, row by row)."""
    j_lo = max(0, -w0)
    j_hi = min(kw, W - w0)
    s = zero
    for i in range(i_lo, i_hi):
        r = xb + (h0 + i) * W + w0
        for j in range(j_lo, j_hi):
            s += xf[_U(r + j)]
    of[_U(o)] = s * sf[_U(so)]


@njit(parallel=True)
def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, scale, out):
    """``out[p, oh, ow]`` = ``scale[oh, ow]`` * sum of the input elements in its window
    (``scale`` = 1/divisor, computed by the op for PyTorch's divisor rules)."""
    P, H, W = x.shape
    OH, OW = out.shape[1], out.shape[2]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    sf = scale.reshape(scale.size)
    for p in prange(P):
        _avg_plane(xf, of, sf, p * H * W, p * OH * OW, H, W, OH, OW, kh, kw, sh, sw, ph, pw)


@njit(inline="always")
def _spread(gi, rs, row, q_lo, n, sw, kw, pw):
    """Interior input columns ``iw = q*sw + r - pw`` (q_lo <= q < q_lo+n, r < sw) of one row:
    ``gi = sum of rs[q - m]`` over the taps ``j = r + m*sw < kw`` that reach them.  Written as a
    gather, each element is stored once and the stores form a complete interleaved group."""
    base = row + q_lo * sw - pw
    for t in range(n):
        for r in range(sw):
            s = rs[_U(q_lo + t)]
            for m in range(1, (kw - 1 - r) // sw + 1):
                s += rs[_U(q_lo + t - m)]
            gi[_U(base + t * sw + r)] = s


@njit
def _spread_column(gi, rs, row, iw, OW, sw, kw, pw):
    """One input column of a row, any window: the valid taps, checked one by one."""
    s = rs[OW]  # a typed zero: rs has one spare element that is never written
    for j in range(kw):
        num = iw + pw - j
        if num >= 0 and num % sw == 0 and num // sw < OW:
            s += rs[num // sw]
    gi[_U(row + iw)] = s


@njit
def _avg_plane_backward(gf, sf, gi, gb, ob, H, W, OH, OW, kh, kw, sh, sw, ph, pw):
    # the gradient is separable: first sum, for input row ih, the scaled gradient rows of the
    # windows that cover it (rs), then spread rs over the columns of each window
    rs = np.zeros(OW + 1, gf.dtype)
    fast = (kw == 3 and sw == 2) or (kw == 3 and sw == 1) or (kw == 2 and sw == 2)
    q_lo = min(max((kw - 1) // sw, (pw + sw - 1) // sw), OW)
    q_hi = max(min(OW, (W - sw + pw) // sw + 1), q_lo)
    if not fast:
        q_lo = q_hi = 0
    for ih in range(H):
        row = gb + ih * W
        oh_lo = max(0, -((kh - 1 - ih - ph) // sh))
        oh_hi = min(OH, (ih + ph) // sh + 1)
        if oh_lo >= oh_hi:
            for iw in range(W):
                gi[_U(row + iw)] = rs[OW]
            continue
        for oh in range(oh_lo, oh_hi):
            o = ob + oh * OW
            so = oh * OW
            if oh == oh_lo:
                for t in range(OW):
                    rs[t] = gf[_U(o + t)] * sf[_U(so + t)]
            else:
                for t in range(OW):
                    rs[t] += gf[_U(o + t)] * sf[_U(so + t)]
        n = q_hi - q_lo
        if kw == 3 and sw == 2:
            _spread(gi, rs, row, q_lo, n, 2, 3, pw)
        elif kw == 3 and sw == 1:
            _spread(gi, rs, row, q_lo, n, 1, 3, pw)
        elif kw == 2 and sw == 2:
            _spread(gi, rs, row, q_lo, n, 2, 2, pw)
        for iw in range(min(q_lo * sw - pw, W)):
            _spread_column(gi, rs, row, iw, OW, sw, kw, pw)
        for iw in range(max(q_hi * sw - pw, 0), W):
            _spread_column(gi, rs, row, iw, OW, sw, kw, pw)


@njit(parallel=True)
def avg_pool2d_backward(grad, kh, kw, sh, sw, ph, pw, scale, out):
    """``out`` (P, H, W): each ``grad[p, oh, ow] * scale[oh, ow]`` added over its window."""
    P, H, W = out.shape
    OH, OW = grad.shape[1], grad.shape[2]
    gf = grad.reshape(grad.size)
    sf = scale.reshape(scale.size)
    gi = out.reshape(out.size)
    for p in prange(P):
        _avg_plane_backward(
            gf, sf, gi, p * H * W, p * OH * OW, H, W, OH, OW, kh, kw, sh, sw, ph, pw
        )


# ------------------------------------------------------------------------ adaptive average pooling
@njit(inline="always")
def _adaptive_window(o, size, out_size):
    """PyTorch's window of output ``o``: ``[floor(o*size/out), ceil((o+1)*size/out))``."""
    return (o * size) // out_size, ((o + 1) * size + out_size - 1) // out_size


@njit(parallel=True)
def adaptive_avg_pool2d_forward(x, out):
    """``out[p, oh, ow]`` = mean of the input over PyTorch's adaptive window."""
    P, H, W = x.shape
    OH, OW = out.shape[1], out.shape[2]
    for p in prange(P):
        for oh in range(OH):
            h0, h1 = _adaptive_window(oh, H, OH)
            for ow in range(OW):
                w0, w1 = _adaptive_window(ow, W, OW)
                s = x[p, h0, w0]
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        if ih > h0 or iw > w0:
                            s += x[p, ih, iw]
                out[p, oh, ow] = s / ((h1 - h0) * (w1 - w0))


@njit(parallel=True)
def adaptive_avg_pool2d_backward(grad, out):
    """``out`` (P, H, W): each ``grad[p, oh, ow] / window size`` added over its window."""
    P, H, W = out.shape
    OH, OW = grad.shape[1], grad.shape[2]
    for p in prange(P):
        for ih in range(H):
            for iw in range(W):
                out[p, ih, iw] = 0.0
        for oh in range(OH):
            h0, h1 = _adaptive_window(oh, H, OH)
            for ow in range(OW):
                w0, w1 = _adaptive_window(ow, W, OW)
                g = grad[p, oh, ow] / ((h1 - h0) * (w1 - w0))
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        out[p, ih, iw] += g
