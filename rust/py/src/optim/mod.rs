//! One file per optimizer: how its param group dict maps onto the core rule, and its engine class.

pub mod adadelta;
pub mod adafactor;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod adopt;
pub mod asgd;
pub mod lamb;
pub mod lion;
pub mod muon;
pub mod nadam;
pub mod radam;
pub mod rmsprop;
pub mod rprop;
pub mod schedule_free_adamw;
pub mod sgd;
