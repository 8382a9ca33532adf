//! Command-line flags derived from an experiment's config table (as
//! open_lth turns hyperparameter dataclass fields into flags): every key of
//! the default table whose value is a number, a string, a boolean or a list
//! of them is a flag `--key-name` (lists comma separated; a boolean `key` is
//! `--key` and `--no-key`). Nested tables are set with the generic
//! `--set table.key=value`. The values are written into the table and the
//! table is deserialized as a whole, so a flag's value is checked exactly as
//! the same value in a TOML file would be.

use clap::{Arg, ArgAction, ArgMatches};

use crate::{Error, Result};

/// Help (and an optional alias) for one derived flag.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// The config key (e.g. `rewind_step`, the flag `--rewind-step`).
    pub key: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Another long name accepted for the flag (e.g. an older spelling).
    pub alias: Option<&'static str>,
}

impl Flag {
    /// Help for key `key`.
    pub const fn new(key: &'static str, help: &'static str) -> Flag {
        Flag { key, help, alias: None }
    }
    /// The flag also answers to `--alias`.
    pub const fn alias(self, alias: &'static str) -> Flag {
        Flag {
            alias: Some(alias),
            ..self
        }
    }
}

/// The flag for `key`: dashes for underscores.
fn long(key: &str) -> String {
    key.replace('_', "-")
}

/// What a value of the default table is, for its flag.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Integer,
    Float,
    Boolean,
    Text,
    /// Unknown (an empty list, or an optional key the default omits):
    /// integers, then numbers, then text.
    Guess,
}

fn kind_of(v: &toml::Value) -> Option<(Kind, bool)> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::Integer(_) => Some(Kind::Integer),
        toml::Value::Float(_) => Some(Kind::Float),
        toml::Value::Boolean(_) => Some(Kind::Boolean),
        toml::Value::String(_) => Some(Kind::Text),
        _ => None,
    };
    match v {
        toml::Value::Array(a) => match a.first() {
            None => Some((Kind::Guess, true)),
            Some(x) => scalar(x).map(|k| (k, true)),
        },
        other => scalar(other).map(|k| (k, false)),
    }
}

/// The keys of `defaults` (and of `flags`) that become flags, in order,
/// with their kind and whether they take a list; keys in `reserved` (the
/// common flags) are left to `--set`.
fn derived<'a>(defaults: &'a toml::Table, flags: &'a [Flag], reserved: &[String]) -> Vec<(String, Kind, bool)> {
    let mut out: Vec<(String, Kind, bool)> = defaults
        .iter()
        .filter_map(|(k, v)| kind_of(v).map(|(kind, list)| (k.clone(), kind, list)))
        .collect();
    for f in flags {
        if !defaults.contains_key(f.key) {
            out.push((f.key.to_string(), Kind::Guess, false));
        }
    }
    out.retain(|(k, _, _)| !reserved.contains(k));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The clap arguments of table `table` with defaults `defaults`.
pub fn args(table: &str, defaults: &toml::Table, flags: &[Flag], reserved: &[String]) -> Vec<Arg> {
    let mut out = Vec::new();
    for (key, kind, list) in derived(defaults, flags, reserved) {
        let f = flags.iter().find(|f| f.key == key);
        let help = f.map(|f| f.help).unwrap_or("");
        let default = defaults
            .get(&key)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unset".into());
        let id = key.clone();
        if kind == Kind::Boolean && !list {
            let (on, off) = (long(&key), format!("no-{}", long(&key)));
            let sep = if help.is_empty() { "" } else { " " };
            out.push(
                Arg::new(id)
                    .long(on.clone())
                    .action(ArgAction::SetTrue)
                    .conflicts_with(format!("no_{key}"))
                    .help(format!("{help}{sep}(sets [{table}] {key} = true; default {default})")),
            );
            out.push(
                Arg::new(format!("no_{key}"))
                    .long(off)
                    .action(ArgAction::SetTrue)
                    .help(format!("Sets [{table}] {key} = false (`--{on}` sets it true).")),
            );
            continue;
        }
        let sep = if help.is_empty() { "" } else { " " };
        let mut arg = Arg::new(id)
            .long(long(&key))
            .action(ArgAction::Set)
            .num_args(1)
            .allow_negative_numbers(true)
            .value_name(if list { "LIST" } else { "VALUE" })
            .help(format!(
                "{help}{sep}([{table}] {key}{}; default {default})",
                if list { ", comma separated" } else { "" }
            ));
        if list {
            arg = arg.value_delimiter(',');
        }
        if let Some(a) = f.and_then(|f| f.alias) {
            arg = arg.visible_alias(a);
        }
        out.push(arg);
    }
    out
}

fn parse_scalar(kind: Kind, s: &str, flag: &str) -> Result<toml::Value> {
    let s = s.trim();
    let bad = |what: &str| Error::invalid(format!("--{flag}"), what, format!("`{s}`"));
    Ok(match kind {
        Kind::Integer => toml::Value::Integer(s.parse().map_err(|_| bad("an integer"))?),
        Kind::Float => toml::Value::Float(s.parse().map_err(|_| bad("a number"))?),
        Kind::Boolean => toml::Value::Boolean(s.parse().map_err(|_| bad("true or false"))?),
        Kind::Text => toml::Value::String(s.to_string()),
        Kind::Guess => {
            if let Ok(i) = s.parse::<i64>() {
                toml::Value::Integer(i)
            } else if let Ok(x) = s.parse::<f64>() {
                toml::Value::Float(x)
            } else {
                toml::Value::String(s.to_string())
            }
        }
    })
}

/// Writes the flags given in `m` into `table` (the experiment's table as
/// read from the config), calling `on_flag` after each; returns the keys set.
pub fn apply(
    m: &ArgMatches,
    defaults: &toml::Table,
    flags: &[Flag],
    reserved: &[String],
    table: &mut toml::Table,
    on_flag: impl Fn(&mut toml::Table, &str),
) -> Result<Vec<String>> {
    let mut set = Vec::new();
    for (key, kind, list) in derived(defaults, flags, reserved) {
        let flag = long(&key);
        let value = if kind == Kind::Boolean && !list {
            if m.get_flag(&key) {
                Some(toml::Value::Boolean(true))
            } else if m.get_flag(&format!("no_{key}")) {
                Some(toml::Value::Boolean(false))
            } else {
                None
            }
        } else {
            match m.get_many::<String>(&key) {
                None => None,
                Some(vals) => {
                    let vals: Vec<toml::Value> = vals.map(|s| parse_scalar(kind, s, &flag)).collect::<Result<_>>()?;
                    if list {
                        Some(toml::Value::Array(vals))
                    } else {
                        vals.into_iter().next()
                    }
                }
            }
        };
        if let Some(v) = value {
            table.insert(key.clone(), v);
            on_flag(table, &key);
            set.push(key);
        }
    }
    Ok(set)
}

/// Applies `--set key.path=value` to a config document: `value` is read as
/// a TOML value (`3`, `0.1`, `[0, 25]`, `"sgd"`, `true`), or as text when it
/// is not one (`--set data.dir=/usr/share/datasets/fashion-mnist`); the
/// tables on the path are created as needed.
pub fn set_path(doc: &mut toml::Table, assignment: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid("--set", format!("KEY=VALUE with a dotted key ({why})"), assignment);
    let (path, value) = assignment.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad("an empty key"));
    }
    let value = value.trim();
    let v = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.into()),
    };
    let (last, parents) = keys.split_last().ok_or_else(|| bad("no key"))?;
    let mut t = doc;
    for (i, k) in parents.iter().enumerate() {
        let entry = t
            .entry(k.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| {
            Error::invalid(
                "--set",
                format!("`{}` to be a table", keys[..=i].join(".")),
                format!("a value in `{assignment}`"),
            )
        })?;
    }
    t.insert(last.to_string(), v);
    Ok(())
}

/// Applies every `--set` of `sets` ([`set_path`]) to the TOML `text` read
/// from `origin`, returning the new text (`text` itself when there is none).
pub fn apply_sets(text: String, origin: &str, sets: &[String]) -> Result<String> {
    if sets.is_empty() {
        return Ok(text);
    }
    let mut doc: toml::Table = toml::from_str(&text).map_err(|e| crate::config::toml_error(&text, origin, &e))?;
    for s in sets {
        set_path(&mut doc, s)?;
    }
    toml::to_string(&doc).map_err(|e| Error::invalid("--set", "values a config file can hold", e))
}

/// Parses a command's flags from clap's matches.
pub fn parse<A: clap::FromArgMatches>(m: &ArgMatches) -> Result<A> {
    A::from_arg_matches(m).map_err(|e| Error::invalid("command line", "valid flags", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_reads_toml_values_and_text() {
        let mut doc = toml::Table::new();
        set_path(&mut doc, "imp.rounds=5").unwrap();
        set_path(&mut doc, "lmc.ks=[0, 25]").unwrap();
        set_path(&mut doc, "data.dir=/usr/share/datasets/fashion-mnist").unwrap();
        assert_eq!(doc["imp"]["rounds"].as_integer(), Some(5));
        assert_eq!(doc["lmc"]["ks"].as_array().map(Vec::len), Some(2));
        assert_eq!(doc["data"]["dir"].as_str(), Some("/usr/share/datasets/fashion-mnist"));
        assert!(set_path(&mut doc, "imp.rounds.x=1").is_err());
        assert!(set_path(&mut doc, "novalue").is_err());
    }

    #[test]
    fn derived_flags_follow_the_defaults() {
        let defaults: toml::Table =
            toml::from_str("rounds = 3\nseeds = [0, 1]\nlinearize = true\n[prune]\nrate = 0.2").unwrap();
        let flags = [Flag::new("mask", "A mask file.")];
        let cmd = clap::Command::new("x").args(args("x", &defaults, &flags, &["seed".to_string()]));
        let m = cmd
            .try_get_matches_from([
                "x",
                "--rounds",
                "5",
                "--seeds",
                "3,4",
                "--no-linearize",
                "--mask",
                "m.st",
            ])
            .unwrap();
        let mut t = toml::Table::new();
        let set = apply(&m, &defaults, &flags, &["seed".to_string()], &mut t, |_, _| {}).unwrap();
        assert_eq!(set.len(), 4);
        assert_eq!(t["rounds"].as_integer(), Some(5));
        assert_eq!(t["linearize"].as_bool(), Some(false));
        assert_eq!(t["mask"].as_str(), Some("m.st"));
        assert!(!t.contains_key("prune"));
        let cmd = clap::Command::new("x").args(args("x", &defaults, &flags, &[]));
        let m = cmd.try_get_matches_from(["x", "--rounds", "many"]).unwrap();
        assert!(apply(&m, &defaults, &flags, &[], &mut t, |_, _| {}).is_err());
    }
}
