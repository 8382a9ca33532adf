//! The command line, generated from a [`Registry`]: one subcommand per
//! registered command (with the common flags of [`super::args`]), and the
//! built-in `merge` and `show-config`.

use std::path::PathBuf;

use clap::{Arg, ArgMatches};

use super::registry::Registry;
use crate::paths::read_json;
use crate::{Error, Result};

/// The whole command line of `ltk`.
pub fn command(reg: &Registry) -> clap::Command {
    let mut c = clap::Command::new("ltk")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Lottery tickets and neural tangent kernels: run experiments, check the theory, draw figures.")
        .subcommand_required(true)
        .arg_required_else_help(true);
    for p in reg.iter() {
        c = c.subcommand(p.command());
    }
    c.subcommand(
        clap::Command::new("merge")
            .about(
                "Combine the shard directories of one run (same command and config) into one run directory \
                 with its summary, report and figures.",
            )
            .arg(
                Arg::new("shards")
                    .required(true)
                    .num_args(1..)
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("Shard directories (e.g. runs/NAME.shard-*)."),
            )
            .arg(
                Arg::new("into")
                    .long("into")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("The merged run directory (default: <parent>/<name> of the shards)."),
            ),
    )
    .subcommand(<super::args::CommonArgs as clap::Args>::augment_args(
        clap::Command::new("show-config").about(
            "Print an experiment config with every default filled in (the built-in one without --config), \
             each experiment table as it would run. The same flags as a command change it as they would \
             there: `ltk show-config --model resnet20 --data cifar10 --data-dir DIR` shows ResNet-20's \
             training defaults from open_lth.",
        ),
    ))
}

/// Runs the parsed command line.
pub fn dispatch(reg: &Registry, m: &ArgMatches) -> Result<()> {
    let Some((name, sub)) = m.subcommand() else {
        return Err(Error::invalid("ltk", "a command (ltk --help lists them)", "none"));
    };
    match name {
        "merge" => {
            let shards: Vec<PathBuf> = sub
                .get_many::<PathBuf>("shards")
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            merge(reg, &shards, sub.get_one::<PathBuf>("into").cloned())
        }
        "show-config" => show_config(reg, sub),
        other => match reg.iter().find(|p| p.name().replace('_', "-") == other) {
            Some(p) => p.run(sub, reg),
            None => Err(Error::invalid("ltk", "a registered command", other)),
        },
    }
}

/// `ltk` with `reg`'s commands: parses the process's arguments (clap
/// prints help and usage errors itself), runs, and exits non-zero on error.
pub fn main(reg: Registry) {
    let m = command(&reg).get_matches();
    let _awake = crate::awake::KeepAwake::start();
    if let Err(e) = dispatch(&reg, &m) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// One registered command as a program of its own (`ntk_compare`), under
/// the program name `name`.
pub fn main_single(reg: Registry, name: &'static str) {
    let Some(p) = reg.get(name) else {
        eprintln!("error: no command `{name}` in the registry");
        std::process::exit(1);
    };
    let m = p.command().name(name).version(env!("CARGO_PKG_VERSION")).get_matches();
    let _awake = crate::awake::KeepAwake::start();
    if let Err(e) = p.run(&m, &reg) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn merge(reg: &Registry, shards: &[PathBuf], into: Option<PathBuf>) -> Result<()> {
    let first = shards
        .first()
        .ok_or_else(|| Error::invalid("ltk merge", "the shard directories of one run", "none"))?;
    let cfg_path = first.join("config.toml");
    let config_text = std::fs::read_to_string(&cfg_path).map_err(|e| {
        Error::invalid(
            format!("shard {}", first.display()),
            "a run directory (with config.toml)",
            e,
        )
    })?;
    let kind: serde_json::Value = read_json(&first.join("run.json"))?;
    let kind = kind["kind"].as_str().unwrap_or("");
    let p = reg
        .get(kind)
        .ok_or_else(|| Error::invalid(format!("shard {}", first.display()), "a run of a known command", kind))?;
    p.merge(&config_text, shards, into)
}

fn show_config(reg: &Registry, m: &ArgMatches) -> Result<()> {
    let a = <super::args::CommonArgs as clap::FromArgMatches>::from_arg_matches(m)
        .map_err(|e| Error::invalid("ltk show-config", "valid flags", e))?;
    let mut c = super::args::load_config(&a, "experiment", false, &|t| reg.check_tables(t))?;
    if let Some(d) = crate::config::paper_defaults(&c.model, c.data.source) {
        eprintln!(
            "note: the model's training defaults ({}) fill the [train] keys the config does not set",
            d.source
        );
    }
    let unresolved = match c.resolve() {
        Ok(exp) => {
            let names: Vec<String> = c.tables.keys().cloned().collect();
            for n in names {
                if let Some(p) = reg.get(&n) {
                    p.show(&exp, &mut c)?;
                }
            }
            None
        }
        Err(e) => Some(e),
    };
    print!("{}", c.to_toml()?);
    match unresolved {
        // The experiment tables' defaults depend on the data and network.
        Some(e) if !c.tables.is_empty() => Err(e),
        Some(e) => {
            eprintln!("note: this config does not run as it is: {e}");
            Ok(())
        }
        None => Ok(()),
    }
}
