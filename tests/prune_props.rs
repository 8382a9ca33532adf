//! Property tests of the pruning invariants (Frankle & Carbin 2019's IMP).

use lottery_tangent::params::{Array, Mask, ParamSet};
use lottery_tangent::prune::{self, Criterion, PruneSpec, Scope};
use lottery_tangent::train::optim::SgdConfig;
use lottery_tangent::train::{Optimizer, OptimizerConfig};
use proptest::prelude::*;

fn params_from(shapes: &[(usize, usize)], vals: &[f32]) -> ParamSet {
    let mut p = ParamSet::new();
    let mut it = vals.iter().cycle();
    for (i, &(r, c)) in shapes.iter().enumerate() {
        let data = (0..r * c).map(|_| *it.next().unwrap()).collect();
        p.insert(format!("fc{}.weight", i + 1), Array::new(vec![r, c], data).unwrap());
    }
    p
}

fn names(p: &ParamSet) -> Vec<String> {
    p.names().cloned().collect()
}

fn kept(m: &Mask, k: &str) -> usize {
    m.0.get(k).unwrap().data.iter().filter(|&&v| v != 0.0).count()
}

/// Prunes, or returns None when the round would empty a layer (which must be
/// the error, with its message).
fn prune_or_empty(spec: &PruneSpec, mask: &Mask, scores: &ParamSet) -> Option<Mask> {
    match prune::prune(spec, mask, scores) {
        Ok(m) => Some(m),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("at least one weight left"), "{e}");
            None
        }
    }
}

fn arb_params() -> impl Strategy<Value = ParamSet> {
    (
        prop::collection::vec((1usize..12, 1usize..12), 1..4),
        prop::collection::vec(-3.0f32..3.0, 1..200),
    )
        .prop_map(|(shapes, vals)| params_from(&shapes, &vals))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Masks stay 0/1, only shrink, never prune an already pruned weight, and
    /// each layer keeps exactly kept - round(p * kept) weights per round, so
    /// after r rounds the density is (1-p)^r up to one weight of rounding per round.
    #[test]
    fn layerwise_rounds_follow_the_recurrence(p in arb_params(), rate in 0.0f64..0.95, rounds in 1usize..6) {
        let spec = PruneSpec { rate, ..Default::default() };
        let layers = names(&p);
        let mut mask = Mask::ones(&p, &layers).unwrap();
        for r in 1..=rounds {
            let scores = prune::scores(Criterion::Magnitude, &p, &p, &layers, 0).unwrap();
            let empties = layers.iter().any(|k| {
                let n = kept(&mask, k);
                n > 0 && (rate * n as f64).round() as usize >= n
            });
            let Some(next) = prune_or_empty(&spec, &mask, &scores) else {
                prop_assert!(empties, "an error although no layer empties");
                break;
            };
            prop_assert!(!empties, "a layer was emptied without an error");
            next.validate(&p).unwrap();
            for k in &layers {
                let (old, new) = (mask.0.get(k).unwrap(), next.0.get(k).unwrap());
                prop_assert!(old.data.iter().zip(&new.data).all(|(&a, &b)| b <= a), "mask grew in {}", k);
                let before = kept(&mask, k);
                prop_assert_eq!(kept(&next, k), before - (rate * before as f64).round() as usize);
                let n = old.data.len() as f64;
                prop_assert!((kept(&next, k) as f64 - n * (1.0 - rate).powi(r as i32)).abs() <= r as f64 + 1e-9);
            }
            mask = next;
        }
    }

    /// Global pruning removes exactly round(p * kept) weights over all layers,
    /// the lowest-magnitude ones, and leaves excluded layers full.
    #[test]
    fn global_pruning_removes_the_exact_count(p in arb_params(), rate in 0.0f64..0.95, exclude_first in any::<bool>()) {
        let layers = names(&p);
        let exclude = if exclude_first && layers.len() > 1 { vec![layers[0].clone()] } else { vec![] };
        let spec = PruneSpec { rate, scope: Scope::Global, exclude: exclude.clone(), ..Default::default() };
        let mask = Mask::ones(&p, &layers).unwrap();
        let scores = prune::scores(Criterion::Magnitude, &p, &p, &layers, 0).unwrap();
        let Some(next) = prune_or_empty(&spec, &mask, &scores) else { return Ok(()) };
        let eligible: usize = layers.iter().filter(|k| !exclude.contains(k)).map(|k| kept(&mask, k)).sum();
        let removed: usize = layers.iter().map(|k| kept(&mask, k) - kept(&next, k)).sum();
        prop_assert_eq!(removed, (rate * eligible as f64).round() as usize);
        for k in &exclude {
            prop_assert_eq!(kept(&next, k), kept(&mask, k));
        }
        // every removed weight is no larger in magnitude than every kept eligible weight
        let mut max_removed = f32::NEG_INFINITY;
        let mut min_kept = f32::INFINITY;
        for k in layers.iter().filter(|k| !exclude.contains(k)) {
            let (w, m) = (&p.get(k).unwrap().data, &next.0.get(k).unwrap().data);
            for (v, b) in w.iter().zip(m) {
                if *b == 0.0 { max_removed = max_removed.max(v.abs()) } else { min_kept = min_kept.min(v.abs()) }
            }
        }
        prop_assert!(removed == 0 || max_removed <= min_kept);
    }

    /// Rewinding (θk ⊙ mask) restores surviving weights exactly, leaves pruned
    /// ones at zero, and optimizer steps with arbitrary gradients keep them zero.
    #[test]
    fn rewinding_and_training_keep_pruned_weights_zero(p in arb_params(), rate in 0.05f64..0.9, g in -5.0f32..5.0) {
        let layers = names(&p);
        let spec = PruneSpec { rate, ..Default::default() };
        let Some(mask) = prune_or_empty(&spec, &Mask::ones(&p, &layers).unwrap(), &prune::scores(Criterion::Magnitude, &p, &p, &layers, 0).unwrap()) else { return Ok(()) };
        let mut rewound = p.clone();
        mask.apply(&mut rewound).unwrap();
        for k in &layers {
            for ((&r, &w), &b) in rewound.get(k).unwrap().data.iter().zip(&p.get(k).unwrap().data).zip(&mask.0.get(k).unwrap().data) {
                prop_assert_eq!(r, if b == 0.0 { 0.0 } else { w });
            }
        }
        let mut opt = Optimizer::new(&OptimizerConfig::Sgd(SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov: false }));
        for step in 0..5 {
            let mut grads = rewound.zeros_like();
            for a in grads.0.values_mut() {
                a.data.iter_mut().enumerate().for_each(|(i, v)| *v = g * ((i + step) as f32).sin());
            }
            opt.step(&mut rewound, &mut grads, 0.1, Some(&mask)).unwrap();
        }
        for k in &layers {
            for (&r, &b) in rewound.get(k).unwrap().data.iter().zip(&mask.0.get(k).unwrap().data) {
                prop_assert!(b != 0.0 || r == 0.0);
            }
        }
    }

    /// Equal scores are broken by position (lowest flat index pruned first), the same every time.
    #[test]
    fn ties_are_broken_deterministically(rows in 1usize..10, cols in 1usize..10, rate in 0.0f64..0.95) {
        let p = params_from(&[(rows, cols)], &[1.0]);
        let layers = names(&p);
        let spec = PruneSpec { rate, ..Default::default() };
        let mask = Mask::ones(&p, &layers).unwrap();
        let scores = prune::scores(Criterion::Magnitude, &p, &p, &layers, 0).unwrap();
        let Some(a) = prune_or_empty(&spec, &mask, &scores) else {
            prop_assert_eq!((rate * (rows * cols) as f64).round() as usize, rows * cols);
            return Ok(());
        };
        let b = prune::prune(&spec, &mask, &scores).unwrap();
        prop_assert_eq!(&a, &b);
        let removed = (rate * (rows * cols) as f64).round() as usize;
        let m = &a.0.get("fc1.weight").unwrap().data;
        prop_assert!(m.iter().enumerate().all(|(i, &v)| (v == 0.0) == (i < removed)));
    }

    /// The random-pruning control keeps exactly the same per-layer counts.
    #[test]
    fn random_masks_match_layer_sparsity(p in arb_params(), rate in 0.0f64..0.95, seed in any::<u64>()) {
        let layers = names(&p);
        let spec = PruneSpec { rate, ..Default::default() };
        let Some(mask) = prune_or_empty(&spec, &Mask::ones(&p, &layers).unwrap(), &prune::scores(Criterion::Magnitude, &p, &p, &layers, 0).unwrap()) else { return Ok(()) };
        let r = prune::random_like(&mask, seed).unwrap();
        for k in &layers {
            prop_assert_eq!(kept(&r, k), kept(&mask, k));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every criterion is deterministic for a seed, shrinks the mask by the
    /// exact count, and the Zhou et al. criteria read θ0 as `init`.
    #[test]
    fn every_criterion_prunes_the_exact_count(p in arb_params(), qv in prop::collection::vec(-3.0f32..3.0, 1..200), rate in 0.0f64..0.6, seed in any::<u64>()) {
        // trained weights with the layout of p
        let mut q = p.clone();
        let mut it = qv.iter().cycle();
        for a in q.0.values_mut() {
            a.data.iter_mut().for_each(|v| *v = *it.next().unwrap());
        }
        let layers = names(&p);
        let spec = PruneSpec { rate, ..Default::default() };
        let mask = Mask::ones(&p, &layers).unwrap();
        for c in Criterion::ALL {
            let s1 = prune::scores(c, &p, &q, &layers, seed).unwrap();
            let s2 = prune::scores(c, &p, &q, &layers, seed).unwrap();
            prop_assert_eq!(&s1, &s2);
            let Some(m) = prune_or_empty(&spec, &mask, &s1) else { continue };
            for k in &layers {
                let n = kept(&mask, k);
                prop_assert_eq!(kept(&m, k), n - (rate * n as f64).round() as usize, "{:?} {}", c, k);
            }
        }
    }

    /// large_final_same_sign prunes every sign-flipped weight before any
    /// weight that kept its sign; large_init_large_final keeps a weight only
    /// if no pruned weight beats it on both |w_init| rank and |w_final| rank.
    #[test]
    fn zhou_criteria_order_weights_as_defined(init in prop::collection::vec(-3.0f32..3.0, 4..60), fin in prop::collection::vec(-3.0f32..3.0, 4..60), rate in 0.05f64..0.9) {
        let n = init.len().min(fin.len());
        let p0 = params_from(&[(1, n)], &init[..n]);
        let pf = params_from(&[(1, n)], &fin[..n]);
        let layers = names(&p0);
        let spec = PruneSpec { rate, ..Default::default() };
        let ones = Mask::ones(&p0, &layers).unwrap();
        let s = prune::scores(Criterion::LargeFinalSameSign, &p0, &pf, &layers, 0).unwrap();
        let Some(m) = prune_or_empty(&spec, &ones, &s) else { return Ok(()) };
        let m = &m.0.get("fc1.weight").unwrap().data;
        let same = |i: usize| init[i].signum() == fin[i].signum();
        let flipped_kept = (0..n).any(|i| m[i] != 0.0 && !same(i));
        let same_pruned = (0..n).any(|i| m[i] == 0.0 && same(i));
        prop_assert!(!(flipped_kept && same_pruned), "a flipped weight kept while a same-sign one is pruned");
        let s = prune::scores(Criterion::LargeInitLargeFinal, &p0, &pf, &layers, 0).unwrap();
        let Some(m) = prune_or_empty(&spec, &ones, &s) else { return Ok(()) };
        let m = &m.0.get("fc1.weight").unwrap().data;
        for i in (0..n).filter(|&i| m[i] != 0.0) {
            for j in (0..n).filter(|&j| m[j] == 0.0) {
                let beats = init[j].abs() > init[i].abs() && fin[j].abs() > fin[i].abs();
                prop_assert!(!beats, "pruned {} dominates kept {}", j, i);
            }
        }
    }
}

#[test]
fn the_output_layer_is_pruned_at_half_rate_by_default() {
    let layers: Vec<String> = ["fc1.weight", "fc2.weight", "fc3.weight"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let spec = PruneSpec::default().resolved(&layers);
    assert_eq!(spec.rate_of("fc1.weight"), 0.2);
    assert_eq!(spec.rate_of("fc3.weight"), 0.1);
    // an explicit rate wins, and a global scope has no per-layer rates
    let mut explicit = PruneSpec::default();
    explicit.layer_rates.insert("fc3.weight".into(), 0.2);
    assert_eq!(explicit.resolved(&layers).rate_of("fc3.weight"), 0.2);
    let global = PruneSpec {
        scope: Scope::Global,
        ..Default::default()
    };
    assert!(global.resolved(&layers).layer_rates.is_empty());
}

#[test]
fn a_schedule_that_empties_a_layer_is_refused_before_training() {
    let counts: std::collections::BTreeMap<String, usize> =
        [("fc1.weight".to_string(), 100), ("fc3.weight".to_string(), 3)]
            .into_iter()
            .collect();
    let spec = PruneSpec {
        rate: 0.5,
        ..Default::default()
    };
    let e = spec.planned_densities(&counts, &counts, 4).unwrap_err().to_string();
    assert!(e.contains("fc3.weight") && e.contains("round"), "{e}");
    let ok = PruneSpec::default().planned_densities(&counts, &counts, 3).unwrap();
    assert_eq!(ok.len(), 4);
    assert!((ok[0] - 1.0).abs() < 1e-12 && ok[3] < ok[2] && ok[2] < ok[1]);
}

#[test]
fn invalid_pruning_input_is_an_error() {
    let p = params_from(&[(3, 4)], &[0.5, -1.0, 2.0]);
    let layers = names(&p);
    let mask = Mask::ones(&p, &layers).unwrap();
    let scores = prune::scores(Criterion::Magnitude, &p, &p, &layers, 0).unwrap();
    for rate in [1.0, 1.5, -0.1, f64::NAN] {
        let e = prune::prune(
            &PruneSpec {
                rate,
                ..Default::default()
            },
            &mask,
            &scores,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[0, 1)"), "{e}");
    }
    // a mask whose shape does not match the parameter
    let mut bad = mask.clone();
    bad.0
        .insert("fc1.weight", Array::new(vec![4, 3], vec![1.0; 12]).unwrap());
    let e = bad.validate(&p).unwrap_err().to_string();
    assert!(
        e.contains("fc1.weight") && e.contains("[3, 4]") && e.contains("[4, 3]"),
        "{e}"
    );
    let e = prune::prune(&PruneSpec::default(), &bad, &scores)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape"), "{e}");
    // non-binary mask values
    let mut half = mask.clone();
    half.0.get_mut("fc1.weight").unwrap().data[0] = 0.5;
    assert!(prune::prune(&PruneSpec::default(), &half, &scores).is_err());
    // layer names that do not exist
    let e = PruneSpec {
        exclude: vec!["nope".into()],
        ..Default::default()
    }
    .validate(&layers)
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope"), "{e}");
}
