//! placeholder replaced below
pub struct Packet;
impl Packet {
    pub fn example() -> Packet {
        Packet
    }
}
pub fn explain(_s: &crate::model::Site, _r: &crate::nft::Ruleset, _p: &Packet) -> Option<()> {
    None
}
