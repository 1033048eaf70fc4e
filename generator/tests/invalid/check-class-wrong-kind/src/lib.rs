pub mod transport {
    pub trait Transportish {}

    pub fn connect() {}
}
