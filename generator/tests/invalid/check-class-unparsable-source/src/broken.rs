pub struct Steady {
    rate: f64,

impl Steady {}
