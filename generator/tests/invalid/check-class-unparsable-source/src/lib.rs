pub mod broken;
pub mod gone;
