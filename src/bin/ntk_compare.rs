//! `ntk_compare`: train a network and its tangent-space linearization side by
//! side across widths and report how far apart they end up (Lee et al. 2019).
//! The defaults run on the embedded digits in a few minutes on 2 cores.
//! The same command as `ltk ntk-compare` (same arguments, same code).

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

fn main() {
    lottery_tangent::runner::cli::main_single(lottery_tangent::experiments::registry(), "ntk_compare");
}
