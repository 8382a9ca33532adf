//! The registry of commands: one list (built in [`crate::experiments`]) from
//! which the command line, the config tables a file may hold, `merge` and
//! `show-config` are all generated, as open_lth keeps one small registry per
//! plug point. An experiment on the base config is one line,
//! [`Registry::with`]; a command with a config of its own (e.g. the flat
//! `ntk_compare` config) implements [`Plugin`] itself.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;

use clap::{ArgMatches, Args};

use super::args::{self, CommonArgs};
use super::flags;
use super::Experiment;
use crate::config::{self, ExperimentConfig};
use crate::{Error, Result};

/// One command of the tool (an experiment, or another command such as
/// `train`), as the command line and the runner see it.
pub trait Plugin {
    /// The run kind, and the config table name when it owns one (`imp`).
    fn name(&self) -> &'static str;
    /// Its subcommand (named `name` with dashes), with every flag.
    fn command(&self) -> clap::Command;
    /// Runs it with the parsed flags.
    fn run(&self, m: &ArgMatches, reg: &Registry) -> Result<()>;
    /// Whether a config file may hold a table `[name]` for it.
    fn owns_table(&self) -> bool {
        false
    }
    /// Checks its table of a config file (unknown keys, wrong types).
    fn check_table(&self, _table: &toml::Value) -> Result<()> {
        Ok(())
    }
    /// Writes its table of `config`, as it would run with base `base`,
    /// into `config` (`show-config`).
    fn show(&self, _base: &config::Experiment, _config: &mut ExperimentConfig) -> Result<()> {
        Ok(())
    }
    /// Merges the shard directories of one of its runs into `into`.
    fn merge(&self, _config_text: &str, _shards: &[PathBuf], _into: Option<PathBuf>) -> Result<()> {
        Err(Error::invalid(
            "ltk merge",
            "shards of an experiment run with --shard",
            format!("`{}` runs, which have no shards", self.name()),
        ))
    }
}

/// The commands, in the order `--help` lists them.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Box<dyn Plugin>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds an experiment on the base config: its subcommand, flags derived
    /// from its config table, its table, merge and show-config.
    pub fn with<E>(self) -> Registry
    where
        E: Experiment<Base = config::Experiment> + 'static,
    {
        self.plugin(TablePlugin::<E>(PhantomData))
    }

    /// Adds a command that implements [`Plugin`] itself.
    pub fn plugin(mut self, p: impl Plugin + 'static) -> Registry {
        debug_assert!(self.get(p.name()).is_none(), "two commands named {}", p.name());
        self.plugins.push(Box::new(p));
        self
    }

    /// The command of run kind `name` (`imp`).
    pub fn get(&self, name: &str) -> Option<&dyn Plugin> {
        self.plugins.iter().find(|p| p.name() == name).map(|p| p.as_ref())
    }

    /// Every command.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Plugin> {
        self.plugins.iter().map(|p| p.as_ref())
    }

    /// The config tables an experiment owns, sorted.
    pub fn tables(&self) -> Vec<&'static str> {
        let mut t: Vec<&'static str> = self.iter().filter(|p| p.owns_table()).map(|p| p.name()).collect();
        t.sort_unstable();
        t
    }

    /// Errors on a table that no experiment owns, or a table whose keys or
    /// values its experiment rejects (unknown key, wrong type).
    pub fn check_tables(&self, tables: &BTreeMap<String, toml::Value>) -> Result<()> {
        for (name, v) in tables {
            match self.get(name).filter(|p| p.owns_table()) {
                Some(p) => p.check_table(v)?,
                None => {
                    return Err(Error::config(
                        name.clone(),
                        format!(
                            "one of name, seed, [data], [model], [train], or an experiment table {:?}",
                            self.tables()
                        ),
                        "an unknown key or table",
                    ))
                }
            }
        }
        Ok(())
    }
}

/// An experiment on the base config as a command.
struct TablePlugin<E>(PhantomData<E>);

impl<E: Experiment<Base = config::Experiment>> TablePlugin<E> {
    fn defaults() -> toml::Table {
        match toml::Value::try_from(E::Config::default()) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        }
    }
}

impl<E: Experiment<Base = config::Experiment> + 'static> Plugin for TablePlugin<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }

    fn command(&self) -> clap::Command {
        // The about text goes after the common flags (whose doc would replace it).
        let c = CommonArgs::augment_args(clap::Command::new(E::NAME.replace('_', "-")))
            .about(format!("{} (the config's [{}] table).", E::ABOUT, E::NAME))
            .allow_negative_numbers(true);
        c.next_help_heading(format!("[{}] table", E::NAME)).args(flags::args(
            E::NAME,
            &Self::defaults(),
            E::FLAGS,
            &args::reserved(),
        ))
    }

    fn owns_table(&self) -> bool {
        true
    }

    fn check_table(&self, v: &toml::Value) -> Result<()> {
        v.clone().try_into::<E::Config>().map(|_| ()).map_err(|e| {
            Error::config(
                format!("[{}]", E::NAME),
                "a valid table",
                e.to_string().trim().to_string(),
            )
        })
    }

    fn run(&self, m: &ArgMatches, reg: &Registry) -> Result<()> {
        let a = crate::runner::flags::parse::<CommonArgs>(m)?;
        let mut config = args::load_config(&a, E::NAME, true, &|t| reg.check_tables(t))?;
        let mut table = match config.tables.remove(E::NAME) {
            Some(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        flags::apply(
            m,
            &Self::defaults(),
            E::FLAGS,
            &args::reserved(),
            &mut table,
            E::on_flag,
        )?;
        config.tables.insert(E::NAME.into(), toml::Value::Table(table));
        let device = crate::device::parse(&a.device)?;
        let mut exp = config.resolve()?;
        let mut cfg: E::Config = exp.config.table(E::NAME)?.unwrap_or_default();
        super::prepare::<E>(&exp, &mut cfg)?;
        exp.config.set_table(E::NAME, &cfg)?;
        let shard = a.shard()?;
        let grow: Vec<String> = E::GROWS.iter().map(|k| format!("{}.{k}", E::NAME)).collect();
        let ctx = args::open_run(&a, &exp.config, E::NAME, shard, &grow)?;
        println!("{}", E::banner(&exp, &cfg));
        args::run_and_print::<E>(&exp, &cfg, &ctx, &device, &a, shard)
    }

    fn show(&self, base: &config::Experiment, config: &mut ExperimentConfig) -> Result<()> {
        if let Some(mut cfg) = config.table::<E::Config>(E::NAME)? {
            super::prepare::<E>(base, &mut cfg)?;
            config.set_table(E::NAME, &cfg)?;
        }
        Ok(())
    }

    fn merge(&self, config_text: &str, shards: &[PathBuf], into: Option<PathBuf>) -> Result<()> {
        let config = ExperimentConfig::from_toml(config_text, &shards[0].join("config.toml").display().to_string())?;
        let exp = config.resolve()?;
        let into = into.unwrap_or_else(|| shards[0].with_file_name(&exp.config.name));
        super::check_shards(shards, &into)?;
        let ctx = super::context::RunContext::open(&into, E::NAME, config_text, false)?;
        let cfg = exp.config.table::<E::Config>(E::NAME)?.unwrap_or_default();
        let s = super::merge::<E>(&exp, &cfg, config_text, shards, &ctx)?;
        print!("{}", E::console(&s));
        print!("{}", crate::report::verdict::claims_text(&E::claims(&s)));
        println!("merged {} shards into {}", shards.len(), into.display());
        Ok(())
    }
}
