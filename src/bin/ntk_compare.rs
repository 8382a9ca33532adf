//! `ntk_compare`: train a network and its tangent-space linearization side by
//! side across widths and report how far apart they end up (Lee et al. 2019).
//! The defaults run on the embedded digits in a few minutes on 2 cores.
//! A thin alias of `ltk ntk-compare` (same arguments, same code).

use clap::Parser;

#[path = "shared/ntk_compare_cli.rs"]
mod ntk_compare_cli;

#[derive(Parser)]
#[command(
    name = "ntk_compare",
    version,
    allow_negative_numbers = true,
    about = "Train an MLP by gradient descent and follow its linearization f(θ0) + J(θ0)(θ − θ0) across widths; \
             report the gap between them, the relative parameter, per-layer and NTK change, accuracies, and a \
             verdict per quantity against Lee et al. 2019's bounds (slope with a 95% CI over seeds, fitted on the \
             widths in the linear regime)."
)]
struct Cli {
    #[command(flatten)]
    args: ntk_compare_cli::NtkCompareArgs,
}

fn main() {
    if let Err(e) = ntk_compare_cli::run(&Cli::parse().args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
