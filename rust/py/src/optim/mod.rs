//! One file per optimizer: how its param group dict maps onto the core rule, and its engine class
//! (`engine_class!`). The build script declares every file of this directory and registers its
//! engine class, so adding an optimizer's binding is adding its file.

include!(concat!(env!("OUT_DIR"), "/optim.rs"));
