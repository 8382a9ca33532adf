//! Experiment configs: unknown keys and bad values are clear errors, never panics.

use lottery_tangent::config::ExperimentConfig;

fn err_of(toml: &str) -> String {
    match ExperimentConfig::from_toml(toml, "test.toml").and_then(|c| c.resolve()) {
        Ok(_) => panic!("expected an error for:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn default_config_resolves_and_round_trips() {
    let c = ExperimentConfig::default();
    let e = c.resolve().unwrap();
    assert_eq!(e.split.train.len() + e.split.test.len(), 1797);
    let text = c.to_toml().unwrap();
    let back = ExperimentConfig::from_toml(&text, "roundtrip").unwrap();
    assert_eq!(back, c);
}

#[test]
fn shipped_experiments_parse() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            ExperimentConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let m = err_of("name = \"x\"\nlearning_rate = 0.1\n");
    assert!(m.contains("learning_rate"), "{m}");
    let m = err_of("[train]\nepochs = 1\nbatchsize = 3\n");
    assert!(m.contains("batchsize"), "{m}");
    let m = err_of("[train.optimizer]\nkind = \"sgd\"\nlr = 0.1\nmomentun = 0.9\n");
    assert!(m.contains("momentun"), "{m}");
    let m = err_of("[model]\nkind = \"mlp\"\nhidden = [8]\nwidth = 3\n");
    assert!(m.contains("width"), "{m}");
}

#[test]
fn bad_values_name_the_field_and_the_expectation() {
    let m = err_of("[model]\nkind = \"mlp\"\nhidden = [64, 0]\n");
    assert!(m.contains("model.hidden") && m.contains("> 0"), "{m}");
    let m = err_of("[train.optimizer]\nkind = \"sgd\"\nlr = 0.0\n");
    assert!(m.contains("train.optimizer.lr") && m.contains("got 0"), "{m}");
    let m = err_of("[train.optimizer]\nkind = \"sgd\"\nlr = -1.0\n");
    assert!(m.contains("train.optimizer.lr"), "{m}");
    let m = err_of("[train.optimizer]\nkind = \"sgd\"\nlr = 0.1\nmomentum = 1.5\n");
    assert!(m.contains("momentum"), "{m}");
    let m = err_of("[train]\nbatch_size = 0\n");
    assert!(m.contains("train.batch_size"), "{m}");
    let m = err_of("[train]\nbatch_size = 100000\n");
    assert!(m.contains("train.batch_size"), "{m}");
    let m = err_of("[train]\nepochs = 1.0\niterations = 5\n");
    assert!(m.contains("only one"), "{m}");
    let m = err_of("[train]\niterations = 10\ncheckpoint_at = [20]\n");
    assert!(m.contains("checkpoint_at"), "{m}");
    let m = err_of("[data]\nsource = \"idx\"\n");
    assert!(m.contains("data.dir"), "{m}");
    let m = err_of("[data]\nsource = \"idx\"\ndir = \"/nonexistent/dir\"\n");
    assert!(m.contains("/nonexistent/dir"), "{m}");
    let m = err_of("[data]\ntest_fraction = 1.5\n");
    assert!(m.contains("test_fraction"), "{m}");
    let m = err_of("[model]\nkind = \"conv\"\nchannels = [4, 4, 4, 4]\n");
    assert!(m.contains("model.channels"), "{m}");
    let m = err_of("[train.schedule]\nkind = \"step\"\nmilestones = [10, 5]\ngamma = 0.1\n");
    assert!(m.contains("milestones"), "{m}");
    let m = err_of("seed = \"abc\"\n");
    assert!(m.contains("test.toml"), "{m}");
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let e = lottery_tangent::device::parse("cuda").unwrap_err().to_string();
    assert!(e.contains("cuda") && e.contains("feature"), "{e}");
    let e = lottery_tangent::device::parse("tpu").unwrap_err().to_string();
    assert!(e.contains("cpu, cuda"), "{e}");
}

/// Label noise moves a seeded round(p·n) of the training labels, each to
/// another class; validation and test labels stay clean; bad fractions and
/// modular data are refused by field.
#[test]
fn label_noise_moves_that_many_training_labels_to_other_classes() {
    use lottery_tangent::config::DataConfig;
    let clean = DataConfig {
        train_size: Some(400),
        validation_size: 100,
        ..Default::default()
    };
    let noisy = DataConfig {
        label_noise: Some(0.25),
        ..clean.clone()
    };
    let (a, b) = (clean.load().unwrap(), noisy.load().unwrap());
    let moved = a
        .train
        .labels
        .iter()
        .zip(&b.train.labels)
        .filter(|(x, y)| x != y)
        .count();
    assert_eq!(moved, 100);
    assert_eq!(a.test.labels, b.test.labels);
    assert_eq!(
        a.validation.as_ref().map(|v| &v.labels),
        b.validation.as_ref().map(|v| &v.labels)
    );
    assert_eq!(a.train.x, b.train.x);
    assert!(b.train.labels.iter().all(|&y| (y as usize) < b.train.num_classes));
    // Seeded: the same split seed moves the same labels.
    assert_eq!(noisy.load().unwrap().train.labels, b.train.labels);
    for p in [1.0, -0.1, f64::NAN] {
        let bad = DataConfig {
            label_noise: Some(p),
            ..clean.clone()
        };
        let e = bad.load().unwrap_err().to_string();
        assert!(e.contains("data.label_noise"), "{e}");
    }
    let modular: lottery_tangent::config::ExperimentConfig =
        toml::from_str("[data]\nsource = \"modular\"\nmodulus = 7\npreprocess = \"none\"\nlabel_noise = 0.1\n")
            .unwrap();
    assert!(modular
        .data
        .load()
        .unwrap_err()
        .to_string()
        .contains("data.label_noise"));
}

/// A model's paper settings fill the `[train]` keys a config leaves out,
/// and only those; models without paper settings keep the generic defaults.
#[test]
fn a_models_paper_defaults_fill_only_what_the_config_leaves_out() {
    use lottery_tangent::train::{OptimizerConfig, Schedule};
    let conv4 = ExperimentConfig::from_toml("[model]\nkind = \"conv4\"\n", "t").unwrap();
    // Frankle & Carbin 2019, Fig. 2: Adam 3e-4, batch 60, 25K iterations.
    assert!(matches!(conv4.train.optimizer, OptimizerConfig::Adam(ref a) if a.lr == 3e-4));
    assert_eq!(
        (conv4.train.batch_size, conv4.train.iterations, conv4.train.epochs),
        (60, Some(25_000), None)
    );
    let mine = ExperimentConfig::from_toml(
        "[model]\nkind = \"conv4\"\n[train]\nepochs = 2\n[train.optimizer]\nkind = \"sgd\"\nlr = 0.01\n",
        "t",
    )
    .unwrap();
    assert!(matches!(mine.train.optimizer, OptimizerConfig::Sgd(ref s) if s.lr == 0.01 && s.momentum == 0.0));
    assert_eq!((mine.train.iterations, mine.train.epochs), (None, Some(2.0)));
    assert_eq!(mine.train.batch_size, 60);

    // open_lth's ResNet-20 and VGG-16: SGD 0.1, momentum 0.9, weight decay
    // 1e-4, batch 128, 160 epochs, x0.1 at epochs 80 and 120; CIFAR augmentation on CIFAR only.
    for kind in ["resnet", "vgg"] {
        for (source, crop) in [("cifar10", 4), ("digits", 0)] {
            let c = ExperimentConfig::from_toml(
                &format!("[data]\nsource = \"{source}\"\n[model]\nkind = \"{kind}\"\n"),
                "t",
            )
            .unwrap();
            assert!(
                matches!(c.train.optimizer, OptimizerConfig::Sgd(ref s) if s.lr == 0.1 && s.momentum == 0.9 && s.weight_decay == 1e-4)
            );
            assert_eq!((c.train.batch_size, c.train.epochs), (128, Some(160.0)));
            assert!(
                matches!(c.train.schedule, Schedule::Step { ref milestone_epochs, .. } if milestone_epochs == &[80.0, 120.0])
            );
            assert_eq!(c.train.augment.crop_padding, crop, "{kind} on {source}");
            assert_eq!(c.train.augment.horizontal_flip, crop > 0);
        }
    }
    // Milestones in epochs become steps: digits has 1,348 training examples, 10 steps per epoch at 128.
    let c = ExperimentConfig::from_toml("[model]\nkind = \"resnet\"\ndepth = 8\nwidth = 2\n", "t").unwrap();
    let e = c.resolve().unwrap();
    assert!(
        matches!(e.spec.schedule, Schedule::Step { ref milestones, .. } if milestones == &[800, 1200]),
        "{:?}",
        e.spec.schedule
    );
    assert_eq!(e.spec.steps, 1600);

    // LeNet-300-100 and the MLPs keep the generic defaults (the digits numbers do not move).
    let lenet = ExperimentConfig::from_toml("[model]\nkind = \"lenet300_100\"\n", "t").unwrap();
    let generic = ExperimentConfig::from_toml("", "t").unwrap();
    assert_eq!(lenet.train, generic.train);
    assert!(matches!(lenet.train.optimizer, OptimizerConfig::Sgd(ref s) if s.lr == 0.1 && s.momentum == 0.0));
    // A written config reads back as itself.
    let text = conv4.to_toml().unwrap();
    assert_eq!(ExperimentConfig::from_toml(&text, "again").unwrap(), conv4);

    let e = err_of("[train.schedule]\nkind = \"step\"\ngamma = 0.1\n");
    assert!(e.contains("milestones") && e.contains("neither"), "{e}");
    let e = err_of("[train.schedule]\nkind = \"step\"\ngamma = 0.1\nmilestone_epochs = [3.0, 2.0]\n");
    assert!(e.contains("milestone_epochs"), "{e}");
}
