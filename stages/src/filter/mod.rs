//! Quality filters: each computes signals from the shared text views and judges them against
//! thresholds from its config.

pub mod length;
