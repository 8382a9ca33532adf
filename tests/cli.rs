//! The `ltk` binary: the resolved config shows the pruning rates used, and
//! bad input fails with a clear message before any training.

use std::process::Command;

fn ltk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ltk"))
}

#[test]
fn show_config_shows_the_output_layers_half_rate() {
    let out = ltk()
        .args(["show-config", "--config", "experiments/imp_digits.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // imp_digits.toml sets rate = 0.3 and no output rate: fc3 gets 0.15
    assert!(text.contains("\"fc3.weight\" = 0.15"), "{text}");
    let out = ltk()
        .args(["show-config", "--config", "experiments/lmc_imp_fashion.toml"])
        .output()
        .unwrap();
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("\"fc3.weight\" = 0.1"), "{text}");
    }
}

#[test]
fn a_rewind_step_past_the_run_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltk()
        .args([
            "imp",
            "--config",
            "experiments/imp_digits.toml",
            "--rewind-step",
            "100000",
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imp.rewind_step") && err.contains("100000"), "{err}");
    assert!(
        !dir.path().join("imp_digits").exists(),
        "no run directory for a refused config"
    );
}

/// The run policy from the command line: re-running continues, a changed
/// config is refused naming the key (config.toml untouched), --force restarts.
#[test]
fn rerunning_continues_and_a_changed_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = ltk();
        c.args(["train", "--iterations", "30", "--quiet", "--name", "t", "--out"])
            .arg(dir.path());
        c.args(extra);
        c.output().unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let summary = || std::fs::read_to_string(dir.path().join("t/summary.json")).unwrap();
    let before = summary();
    let again = run(&[]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("continuing the run"));
    // re-opening a finished run keeps its measured throughput
    assert_eq!(summary(), before);
    assert!(!before.contains("\"samples_per_second\": 0.0"), "{before}");
    let cfg = std::fs::read_to_string(dir.path().join("t/config.toml")).unwrap();
    let changed = run(&["--lr", "0.2"]);
    assert!(!changed.status.success());
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(err.contains("train.optimizer.lr") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("t/config.toml")).unwrap(), cfg);
    let forced = run(&["--lr", "0.2", "--force"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert!(String::from_utf8_lossy(&forced.stderr).contains("--force: removed"));
}

#[test]
fn hidden_widths_with_a_fixed_model_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltk()
        .args(["train", "--model", "lenet300_100", "--hidden", "64", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--hidden") && err.contains("lenet300_100"), "{err}");
}

/// `ntk_compare --name X` and `ltk subset-sum --name X` never overwrite a run
/// of another command.
#[test]
fn runs_of_another_command_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let train = ltk()
        .args(["train", "--iterations", "5", "--quiet", "--name", "x", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let ntk = Command::new(env!("CARGO_BIN_EXE_ntk_compare"))
        .args(["--name", "x", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!ntk.status.success());
    let err = String::from_utf8_lossy(&ntk.stderr);
    assert!(err.contains("`train` run") && err.contains("--force"), "{err}");
    let ss = ltk()
        .args(["subset-sum", "--ns", "4,6", "--trials", "2", "--name", "x", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!ss.status.success());
    assert!(String::from_utf8_lossy(&ss.stderr).contains("`train` run"));
    assert!(dir.path().join("x/metrics.json").exists(), "the train run is intact");
}

/// A write that fails (here: /dev/full, always "no space left") names the file.
#[test]
fn a_failed_write_names_the_file() {
    use lottery_tangent::params::{Array, ParamSet};
    let mut p = ParamSet::new();
    p.insert("w", Array::new(vec![2], vec![1.0, 2.0]).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p.safetensors");
    // the temporary file is a symlink to /dev/full, so the write hits ENOSPC
    std::os::unix::fs::symlink("/dev/full", dir.path().join("p.safetensors.tmp")).unwrap();
    let e = p.save(&target).unwrap_err().to_string();
    assert!(e.contains("p.safetensors"), "{e}");
}

/// kill -9 at random moments of a run that saves its state every step, then
/// re-running the same command: the final weights equal an uninterrupted
/// run's, bit for bit (the state is saved atomically; the stale lock of the
/// killed process is taken over).
#[test]
fn kill_9_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        "name = \"k\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"mlp\"\nhidden = [64]\n[train]\niterations = 600\nbatch_size = 32\neval_every = 50\nsave_every = 1\n",
    )
    .unwrap();
    let cmd = |out: &std::path::Path| {
        let mut c = ltk();
        c.args(["train", "--quiet", "--config"]).arg(&cfg).arg("--out").arg(out);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let clean = dir.path().join("clean");
    assert!(cmd(&clean).status().unwrap().success());
    let want = std::fs::read(clean.join("k/final.safetensors")).unwrap();
    let killed = dir.path().join("killed");
    let mut kills = 0;
    for delay_ms in [150u64, 320, 90, 470, 230] {
        let mut child = cmd(&killed).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 1, "no run was interrupted: lengthen the run");
    let out = cmd(&killed).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = std::fs::read(killed.join("k/final.safetensors")).unwrap();
    assert!(got == want, "resumed after {kills} kills: final weights differ");
}
