//! Spanning tree (802.1D STP and RSTP): the pure core; [`cst`] is how the forwarding core uses it.
//!
//! [`bpdu`] is the wire format (BPDUs inside 802.2 LLC to 01:80:c2:00:00:00). No I/O and no
//! clock reads here; times are carried as the BPDU's 1/256 s units. [`fsm`] is the 802.1D
//! state machine of one bridge, driven by events with the time passed in; [`rstp`] is
//! RSTP (802.1D-2004 clause 17) the same way.

pub mod bpdu;
pub mod cst;
pub mod fsm;
pub mod rstp;
