//! Parts shared by the graph models: the input layer of spec §4.2 and the tensor primitives
//! (masked and segment softmax, gather/scatter aggregation, typed projections, dropout).
pub mod edge_kernels;
pub mod input;
pub mod ops;

pub use input::{uniform_init, InputConfig, InputLayer, POSITION_ROWS};
