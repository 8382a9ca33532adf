//! Settings read from environment variables, each a choice among named
//! values (`LTK_SIMD`, `LTK_CONV_SIMD`, `LTK_CONV_WINOGRAD`, `LTK_KEEP_AWAKE`).

/// The value among `choices` that `value` names (`None`: `default`), or
/// `value` itself when it names none.
pub(crate) fn choice_named<'a, T: Copy>(
    value: Option<&'a str>,
    choices: &[(&str, T)],
    default: T,
) -> Result<T, &'a str> {
    match value {
        None => Ok(default),
        Some(v) => choices.iter().find(|(name, _)| *name == v).map(|&(_, c)| c).ok_or(v),
    }
}

/// The names of `choices` as a list in words: `a, b or c`.
fn expected<T>(choices: &[(&str, T)]) -> String {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The choice the environment variable `var` names: `default` when it is
/// unset, and when its value names none of `choices`, after a warning that
/// says the variable, the value and the names expected.
pub(crate) fn choice<T: Copy>(var: &str, choices: &[(&str, T)], default: T) -> T {
    let value = std::env::var(var).ok();
    choice_named(value.as_deref(), choices, default).unwrap_or_else(|other| {
        eprintln!("{var}={other:?} ignored: expected {}", expected(choices));
        default
    })
}

#[cfg(test)]
mod tests {
    use super::{choice_named, expected};

    #[test]
    fn choices_by_name_and_the_expected_list() {
        let c = [("on", true), ("off", false)];
        assert_eq!(choice_named(None, &c, true), Ok(true));
        assert_eq!(choice_named(Some("off"), &c, true), Ok(false));
        assert_eq!(choice_named(Some("OFF"), &c, true), Err("OFF"));
        assert_eq!(expected(&c), "on or off");
        assert_eq!(expected(&[("auto", 0), ("on", 1), ("off", 2)]), "auto, on or off");
        assert_eq!(expected(&[("x", 0)]), "x");
    }
}
