//! `ltk`: the lottery-ticket / tangent-kernel toolkit's main command. The
//! subcommands come from the registry ([`lottery_tangent::experiments::registry`]).

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

fn main() {
    lottery_tangent::runner::cli::main(lottery_tangent::experiments::registry());
}
