//! SubsetSum: given candidate numbers `a_1..a_n` and a target `z`, choose the
//! subset whose sum is closest to `z`.
//!
//! This is the core of the strong lottery ticket constructions of Pensia et
//! al. (2020, "Optimal lottery tickets via SubsetSum"): a target weight is
//! approximated by a subset of random weights, and Lueker (1998) shows that
//! `n` random candidates reach error `2^{-Θ(n)}` (see [`crate::experiments::lueker`]).
//!
//! Three solvers:
//! - [`exact`] (and the reusable [`MeetInMiddle`]): Horowitz & Sahni's (1974)
//!   meet in the middle in `f64`, `O(2^{n/2})` per target once the two halves
//!   are enumerated;
//! - [`brute_force`]: all `2^n` subsets, the reference for tests;
//! - [`batched`]: the meet in the middle for many problems at once, written in
//!   candle tensor ops so it runs on any candle device.
//!
//! Subsets are `u64` membership masks: bit `i` set means candidate `i` is chosen.
//! The reported `sum` is always the sum of the chosen candidates taken in
//! index order (in `f64`), and `error = |sum - target|`.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// The best subset for one target: its sum, |sum - z|, and membership bits (bit i = candidate i chosen).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Solution {
    pub sum: f64,
    pub error: f64,
    pub subset: u64,
}

/// Largest `n` accepted by [`exact`] (2^24 subset sums per half).
pub const MAX_EXACT_N: usize = 48;
/// Largest `n` accepted by [`brute_force`].
pub const MAX_BRUTE_FORCE_N: usize = 24;
/// Largest `n` accepted by [`batched`] (2^16 subset sums per half).
pub const MAX_BATCHED_N: usize = 32;

/// Bytes allowed for one `[chunk, 2^(n/2)]` f32 tensor in [`batched`].
const CHUNK_BYTES: usize = 64 << 20;
/// Off the CPU, candle's row-wise argsort keeps a padded row in GPU shared
/// memory (48 KiB by default), so rows longer than `2^12` are sorted by
/// argsorting the sums of the first 12 candidates of the half and then merging
/// in the remaining candidates one at a time.
const DEVICE_ARGSORT_MAX_LOG2: usize = 12;

/// The sum of the candidates selected by `subset`, in index order.
pub fn subset_sum_of(candidates: &[f64], subset: u64) -> f64 {
    candidates
        .iter()
        .enumerate()
        .filter(|(i, _)| subset >> i & 1 == 1)
        .map(|(_, &c)| c)
        .sum()
}

fn solution_for(candidates: &[f64], target: f64, subset: u64) -> Solution {
    let sum = subset_sum_of(candidates, subset);
    Solution {
        sum,
        error: (sum - target).abs(),
        subset,
    }
}

/// Checks finiteness and that no subset sum (or its distance to `target`) can overflow.
fn check_values(candidates: &[f64], what: &str) -> Result<()> {
    if let Some((i, c)) = candidates.iter().enumerate().find(|(_, c)| !c.is_finite()) {
        return Err(Error::invalid(format!("{what} candidate {i}"), "a finite number", c));
    }
    let total: f64 = candidates.iter().map(|c| c.abs()).sum();
    if !total.is_finite() || total > f64::MAX / 4.0 {
        return Err(Error::invalid(
            format!("{what} candidates"),
            "a sum of magnitudes that cannot overflow",
            total,
        ));
    }
    Ok(())
}

fn check_target(target: f64) -> Result<()> {
    if !target.is_finite() || target.abs() > f64::MAX / 4.0 {
        return Err(Error::invalid(
            "subset-sum target",
            "a finite number (|z| <= f64::MAX / 4)",
            target,
        ));
    }
    Ok(())
}

/// All `2^c.len()` subset sums of `c`, sorted ascending, with their masks.
///
/// Built by doubling: the sums of the first `i + 1` candidates are the merge of
/// the (sorted) sums `S` of the first `i` and the (also sorted) `S + c_i`, so
/// the whole table costs `O(2^len)`. Each sum is accumulated in index order.
fn sorted_subset_sums(c: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let m = 1usize << c.len();
    let mut vals = Vec::with_capacity(m);
    let mut idx = Vec::with_capacity(m);
    vals.push(0.0f64);
    idx.push(0u32);
    let mut nv: Vec<f64> = Vec::with_capacity(m);
    let mut ni: Vec<u32> = Vec::with_capacity(m);
    for (i, &x) in c.iter().enumerate() {
        let bit = 1u32 << i;
        let len = vals.len();
        nv.clear();
        ni.clear();
        let (mut p, mut q) = (0usize, 0usize);
        while p < len && q < len {
            let y = vals[q] + x;
            if vals[p] <= y {
                nv.push(vals[p]);
                ni.push(idx[p]);
                p += 1;
            } else {
                nv.push(y);
                ni.push(idx[q] | bit);
                q += 1;
            }
        }
        while p < len {
            nv.push(vals[p]);
            ni.push(idx[p]);
            p += 1;
        }
        while q < len {
            nv.push(vals[q] + x);
            ni.push(idx[q] | bit);
            q += 1;
        }
        std::mem::swap(&mut vals, &mut nv);
        std::mem::swap(&mut idx, &mut ni);
    }
    (vals, idx)
}

/// The meet-in-the-middle solver for one candidate set, prepared once and
/// queried for any number of targets.
///
/// Construction enumerates the `2^(n/2)` subset sums of each half, sorted
/// (by merging, `O(2^(n/2))`); each [`MeetInMiddle::solve`] then sweeps the
/// first half ascending while a pointer into the second half moves down
/// monotonically to the lower bound of `z - a` (the two-pointer form of the
/// binary search, `O(2^(n/2))` per target).
#[derive(Clone, Debug)]
pub struct MeetInMiddle {
    candidates: Vec<f64>,
    h1: usize,
    a_vals: Vec<f64>,
    a_idx: Vec<u32>,
    b_vals: Vec<f64>,
    b_idx: Vec<u32>,
}

impl MeetInMiddle {
    /// Prepares the solver. Errors if `n > 48` or a candidate is non-finite.
    pub fn new(candidates: &[f64]) -> Result<Self> {
        let n = candidates.len();
        if n > MAX_EXACT_N {
            return Err(Error::invalid(
                "number of subset-sum candidates (exact solver)",
                format!("at most {MAX_EXACT_N}"),
                n,
            ));
        }
        check_values(candidates, "subset-sum")?;
        let h1 = n / 2;
        let (a_vals, a_idx) = sorted_subset_sums(&candidates[..h1]);
        let (b_vals, b_idx) = sorted_subset_sums(&candidates[h1..]);
        Ok(MeetInMiddle {
            candidates: candidates.to_vec(),
            h1,
            a_vals,
            a_idx,
            b_vals,
            b_idx,
        })
    }

    /// The candidates.
    pub fn candidates(&self) -> &[f64] {
        &self.candidates
    }

    /// The best subset for `target`. Errors if `target` is non-finite.
    pub fn solve(&self, target: f64) -> Result<Solution> {
        check_target(target)?;
        let (a, b) = (&self.a_vals, &self.b_vals);
        // Invariant: every b[k] with k >= j is >= the current query t = z - a[p];
        // as a[p] grows, t shrinks and j only moves down.
        let mut j = b.len();
        let mut best = (f64::INFINITY, 0usize, 0usize);
        for (p, &av) in a.iter().enumerate() {
            let t = target - av;
            while j > 0 && b[j - 1] >= t {
                j -= 1;
            }
            for k in [j.wrapping_sub(1), j] {
                if let Some(&bv) = b.get(k) {
                    let e = (av + bv - target).abs();
                    if e < best.0 {
                        best = (e, p, k);
                    }
                }
            }
        }
        let subset = self.a_idx[best.1] as u64 | (self.b_idx[best.2] as u64) << self.h1;
        Ok(solution_for(&self.candidates, target, subset))
    }
}

/// Exact meet-in-the-middle solver (Horowitz & Sahni 1974): enumerate the 2^(n/2) subset sums of each half, sort them, and for each sum a of the first half find the sums of the second half nearest to z - a (a two-pointer sweep, equivalent to a binary search per a). O(2^(n/2) n). f64 arithmetic. Errors if n > 48 or a candidate/target is non-finite. n = 0 => empty subset.
///
/// To solve many targets for the same candidates, build a [`MeetInMiddle`] once.
pub fn exact(candidates: &[f64], target: f64) -> Result<Solution> {
    check_target(target)?;
    MeetInMiddle::new(candidates)?.solve(target)
}

/// Brute force over all 2^n subsets (n <= 24), the reference for tests.
pub fn brute_force(candidates: &[f64], target: f64) -> Result<Solution> {
    let n = candidates.len();
    if n > MAX_BRUTE_FORCE_N {
        return Err(Error::invalid(
            "number of subset-sum candidates (brute force)",
            format!("at most {MAX_BRUTE_FORCE_N}"),
            n,
        ));
    }
    check_values(candidates, "subset-sum")?;
    check_target(target)?;
    let mut best = solution_for(candidates, target, 0);
    for mask in 1u64..(1u64 << n) {
        let s = solution_for(candidates, target, mask);
        if s.error < best.error {
            best = s;
        }
    }
    Ok(best)
}

/// Batched meet-in-the-middle written in candle tensor ops, for T problems at once, each with its own n candidates: candidates [T, n] row-major f32, targets [T]. Runs on any candle device (CPU, or CUDA in builds with the `cuda` feature). Processes the T problems in chunks so memory stays bounded (chunk size chosen so each [chunk, 2^(n/2)] f32 tensor is at most ~64 MB). Returns one Solution per problem. Errors on n > 32 (2^16 per half), T*n != candidates.len(), non-finite input.
///
/// The search runs in `f32`, so the chosen subset is optimal up to `f32`
/// rounding of the sums; the returned `sum` and `error` are recomputed on the
/// host in `f64` for the chosen subset.
pub fn batched(candidates: &[f32], targets: &[f32], n: usize, device: &Device) -> Result<Vec<Solution>> {
    let argsort_max = if device.is_cpu() {
        usize::MAX
    } else {
        DEVICE_ARGSORT_MAX_LOG2
    };
    batched_impl(candidates, targets, n, device, argsort_max)
}

/// [`batched`], with halves of more than `argsort_max_log2` candidates sorted
/// by argsort-then-merge (so the merge path can be tested on the CPU).
fn batched_impl(
    candidates: &[f32],
    targets: &[f32],
    n: usize,
    device: &Device,
    argsort_max_log2: usize,
) -> Result<Vec<Solution>> {
    if n > MAX_BATCHED_N {
        return Err(Error::invalid(
            "number of subset-sum candidates (batched solver)",
            format!("at most {MAX_BATCHED_N}"),
            n,
        ));
    }
    let t = targets.len();
    if t.checked_mul(n) != Some(candidates.len()) {
        return Err(Error::Shape {
            what: "batched subset-sum candidates (T targets x n)".into(),
            expected: vec![t, n],
            got: vec![candidates.len()],
        });
    }
    if let Some((i, z)) = targets.iter().enumerate().find(|(_, z)| !z.is_finite()) {
        return Err(Error::invalid(format!("subset-sum target {i}"), "a finite number", z));
    }
    if let Some((i, c)) = candidates.iter().enumerate().find(|(_, c)| !c.is_finite()) {
        return Err(Error::invalid(
            format!("subset-sum candidate {} of problem {}", i % n.max(1), i / n.max(1)),
            "a finite number",
            c,
        ));
    }
    // All f32 intermediates (sums of subsets, their differences to the target) must stay finite.
    for (r, &z) in targets.iter().enumerate() {
        let row = &candidates[r * n..(r + 1) * n];
        let total: f64 = row.iter().map(|&c| (c as f64).abs()).sum::<f64>() + (z as f64).abs();
        if total > f32::MAX as f64 / 4.0 {
            return Err(Error::invalid(
                format!("subset-sum problem {r}"),
                "sum of |candidates| + |target| within f32 range (<= f32::MAX / 4)",
                total,
            ));
        }
    }
    let host_solution = |r: usize, subset: u64| {
        let row: Vec<f64> = candidates[r * n..(r + 1) * n].iter().map(|&c| c as f64).collect();
        solution_for(&row, targets[r] as f64, subset)
    };
    if n == 0 {
        return Ok((0..t).map(|r| host_solution(r, 0)).collect());
    }
    let h1 = n / 2;
    let h2 = n - h1;
    let m2 = 1usize << h2;
    let chunk = (CHUNK_BYTES / 4 / m2).max(1);
    let mut out = Vec::with_capacity(t);
    let mut r0 = 0;
    while r0 < t {
        let rows = chunk.min(t - r0);
        let cand = Tensor::from_slice(&candidates[r0 * n..(r0 + rows) * n], (rows, n), device)?;
        let z = Tensor::from_slice(&targets[r0..r0 + rows], (rows, 1), device)?;
        let (a_idx, b_idx) = solve_chunk(&cand, &z, h1, h2, argsort_max_log2)?;
        for (k, (a, b)) in a_idx.into_iter().zip(b_idx).enumerate() {
            out.push(host_solution(r0 + k, a as u64 | (b as u64) << h1));
        }
        r0 += rows;
    }
    Ok(out)
}

/// Subset sums of columns `start..start + len` of `cand` [rows, n], by doubling:
/// [rows, 2^len], column `j` holds the sum of the candidates in the bits of `j`.
fn half_sums(cand: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let rows = cand.dim(0)?;
    let mut s = Tensor::zeros((rows, 1), DType::F32, cand.device())?;
    for i in 0..len {
        let c = cand.narrow(1, start + i, 1)?;
        s = Tensor::cat(&[&s, &s.broadcast_add(&c)?], 1)?;
    }
    Ok(s)
}

/// For each query `q[r, j]`, how many entries of the ascending row `sorted[r]`
/// are `< q` (`inclusive = false`, the lower bound) or `<= q` (`true`), as u32
/// [rows, k]. Rows must have a power-of-two length `m`.
///
/// Branchless binary search: with steps `m/2, ..., 2, 1, 1`, move `pos` up by
/// `step` whenever `sorted[pos + step - 1]` is below the query. Before a step
/// of size `s` the count lies in `[pos, pos + 2s]` (so probes stay in range);
/// after the halving steps it lies in `[pos, pos + 1]`, and the final step of
/// 1 (probing `sorted[pos]`) settles it: `log2(m) + 1` gathers in all.
fn count_below(sorted: &Tensor, q: &Tensor, inclusive: bool) -> Result<Tensor> {
    let m = sorted.dim(1)?;
    debug_assert!(m.is_power_of_two());
    let mut pos = Tensor::zeros(q.shape(), DType::U32, q.device())?;
    let mut step = m / 2;
    loop {
        let s = step.max(1);
        let probe = pos.affine(1.0, (s - 1) as f64)?;
        let v = sorted.gather(&probe, 1)?;
        let below = if inclusive { v.le(q)? } else { v.lt(q)? };
        pos = below.where_cond(&probe.affine(1.0, 1.0)?, &pos)?;
        if step == 0 {
            return Ok(pos);
        }
        step /= 2;
    }
}

/// Sorts each row of the second-half sums: (sorted values, original column
/// index as u32), both [rows, 2^h2].
fn sort_half(cand: &Tensor, h1: usize, h2: usize, argsort_max_log2: usize) -> Result<(Tensor, Tensor)> {
    let k = h2.min(argsort_max_log2);
    let b = half_sums(cand, h1, k)?;
    let mut idx = b.arg_sort_last_dim(true)?;
    let mut vals = b.gather(&idx, 1)?;
    // Merge in the remaining candidates: the sorted sums S and S + c are merged
    // by ranks (x in S goes to i + #{y < x}, y in S + c to j + #{x <= y}).
    let rows = cand.dim(0)?;
    let dev = cand.device();
    for i in k..h2 {
        let m = 1usize << i;
        let c = cand.narrow(1, h1 + i, 1)?;
        let shifted = vals.broadcast_add(&c)?;
        let shifted_idx = idx.affine(1.0, m as f64)?;
        let ar = Tensor::arange(0u32, m as u32, dev)?.reshape((1, m))?;
        let pos_x = count_below(&shifted, &vals, false)?.broadcast_add(&ar)?;
        let pos_y = count_below(&vals, &shifted, true)?.broadcast_add(&ar)?;
        let pos = Tensor::cat(&[&pos_x, &pos_y], 1)?;
        vals = Tensor::zeros((rows, 2 * m), DType::F32, dev)?.scatter(&pos, &Tensor::cat(&[&vals, &shifted], 1)?, 1)?;
        idx =
            Tensor::zeros((rows, 2 * m), DType::U32, dev)?.scatter(&pos, &Tensor::cat(&[&idx, &shifted_idx], 1)?, 1)?;
    }
    Ok((vals, idx))
}

/// Solves one chunk: per row, the first-half index and second-half index of the best subset.
fn solve_chunk(
    cand: &Tensor,
    z: &Tensor,
    h1: usize,
    h2: usize,
    argsort_max_log2: usize,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let m2 = 1usize << h2;
    let a = half_sums(cand, 0, h1)?;
    let (bs, perm) = sort_half(cand, h1, h2, argsort_max_log2)?;
    let q = z.broadcast_sub(&a)?;
    let lo = count_below(&bs, &q, false)?;
    // The nearest sums to q are at lo - 1 and lo (clamped); positions are u32.
    let pos_hi = lo.minimum((m2 - 1) as f64)?;
    let one = Tensor::ones((1, 1), DType::U32, lo.device())?;
    let pos_lo = lo.maximum(1.0)?.broadcast_sub(&one)?;
    let err_at = |pos: &Tensor| -> Result<Tensor> {
        let v = bs.gather(pos, 1)?;
        Ok((&a + &v)?.broadcast_sub(z)?.abs()?)
    };
    let e_hi = err_at(&pos_hi)?;
    let e_lo = err_at(&pos_lo)?;
    let take_lo = e_lo.lt(&e_hi)?;
    let pos = take_lo.where_cond(&pos_lo, &pos_hi)?;
    let err = e_lo.minimum(&e_hi)?;
    let best_a = err.argmin_keepdim(1)?;
    let best_pos = pos.gather(&best_a, 1)?;
    let best_b = perm.gather(&best_pos, 1)?;
    Ok((
        best_a.flatten_all()?.to_vec1::<u32>()?,
        best_b.flatten_all()?.to_vec1::<u32>()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    fn random_problems(t: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = crate::rng::stream(seed, "subset-sum-unit");
        let c = (0..t * n).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let z = (0..t).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        (c, z)
    }

    #[test]
    fn sorted_sums_are_sorted_and_complete() {
        let c = [0.5, -0.25, 0.125, 1.0];
        let (v, i) = sorted_subset_sums(&c);
        assert_eq!(v.len(), 16);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        let mut seen = i.clone();
        seen.sort();
        assert_eq!(seen, (0..16).collect::<Vec<u32>>());
        for (val, mask) in v.iter().zip(&i) {
            assert_eq!(*val, subset_sum_of(&c, *mask as u64));
        }
    }

    #[test]
    fn small_cases() {
        let s = exact(&[], 0.3).unwrap();
        assert_eq!((s.subset, s.sum), (0, 0.0));
        assert!((s.error - 0.3).abs() < 1e-15);
        let s = exact(&[1.0, 2.0, 4.0], 5.0).unwrap();
        assert_eq!((s.subset, s.error), (0b101, 0.0));
        let s = brute_force(&[1.0, 2.0, 4.0], 6.2).unwrap();
        assert_eq!(s.subset, 0b110);
    }

    #[test]
    fn merge_sort_of_half_sums_is_a_sorted_permutation() {
        let (c, _) = random_problems(5, 9, 11);
        let cand = Tensor::from_slice(&c, (5, 9), &Device::Cpu).unwrap();
        for cap in [0usize, 1, 3, 9] {
            let (vals, idx) = sort_half(&cand, 2, 7, cap).unwrap();
            let (vals, idx) = (vals.to_vec2::<f32>().unwrap(), idx.to_vec2::<u32>().unwrap());
            for r in 0..5 {
                assert!(vals[r].windows(2).all(|w| w[0] <= w[1]), "cap {cap} row {r}");
                let mut seen = idx[r].clone();
                seen.sort();
                assert_eq!(seen, (0..128).collect::<Vec<u32>>());
                for (v, &j) in vals[r].iter().zip(&idx[r]) {
                    let direct: f32 = (0..7).filter(|b| j >> b & 1 == 1).map(|b| c[r * 9 + 2 + b]).sum();
                    assert!((v - direct).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn count_below_is_lower_and_upper_bound() {
        let sorted = Tensor::from_slice(&[1f32, 2., 2., 3.], (1, 4), &Device::Cpu).unwrap();
        let q = Tensor::from_slice(&[0f32, 1., 2., 2.5, 3., 9.], (1, 6), &Device::Cpu).unwrap();
        let lt = count_below(&sorted, &q, false).unwrap().to_vec2::<u32>().unwrap();
        let le = count_below(&sorted, &q, true).unwrap().to_vec2::<u32>().unwrap();
        assert_eq!(lt[0], vec![0, 0, 1, 3, 3, 4]);
        assert_eq!(le[0], vec![0, 1, 3, 3, 4, 4]);
        let one = Tensor::from_slice(&[5f32], (1, 1), &Device::Cpu).unwrap();
        let got = count_below(&one, &q, false).unwrap().to_vec2::<u32>().unwrap();
        assert_eq!(got[0], vec![0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn batched_merge_path_matches_argsort_path() {
        for n in [1usize, 5, 9, 12] {
            let (c, z) = random_problems(13, n, n as u64);
            let full = batched_impl(&c, &z, n, &Device::Cpu, usize::MAX).unwrap();
            let merged = batched_impl(&c, &z, n, &Device::Cpu, 2).unwrap();
            for (r, (a, b)) in full.iter().zip(&merged).enumerate() {
                let row: Vec<f64> = c[r * n..(r + 1) * n].iter().map(|&x| x as f64).collect();
                let e = exact(&row, z[r] as f64).unwrap().error;
                assert!((a.error - e).abs() < 1e-5, "n={n} r={r}: {} vs {e}", a.error);
                assert!((b.error - e).abs() < 1e-5, "n={n} r={r}: {} vs {e}", b.error);
            }
        }
    }
}
