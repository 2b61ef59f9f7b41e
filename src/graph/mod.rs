//! Per-sample modality-enriched sequence graphs (MSGraph, spec §3): the builder, the set of all
//! graphs of a split (built once per dataset, in parallel), and the dense and sparse batch
//! layouts the models consume.
pub mod batch;
pub mod builder;
pub mod receptive;
pub mod set;
pub mod splits;
pub mod structure;

pub use batch::{
    AllEdges, DenseGraphBatch, DenseStructure, EdgeLists, GraphBatch, GraphLayout, PhaseEdges,
    SparseGraphBatch,
};
pub use builder::{build_graph, MsGraph, Scratch};
pub use set::{GraphSet, GraphStats};
pub use splits::SplitGraphs;
pub use structure::StructureSet;

/// Node types as the official code numbers them (0 = padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeType {
    Padding = 0,
    Item = 1,
    Image = 2,
    Text = 3,
}

/// The 10 relation ids of spec §3.2 (0 = no edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Relation {
    SelfLoop = 1,
    /// `i` precedes `j`.
    Out = 2,
    /// `i` follows `j`.
    In = 3,
    /// Both orders occurred.
    Both = 4,
    ItemToImage = 5,
    ImageToItem = 6,
    ItemToText = 7,
    TextToItem = 8,
    ImageToText = 9,
    TextToImage = 10,
}

pub const NUM_RELATIONS: usize = 10;

impl Relation {
    pub fn from_id(id: u8) -> Self {
        use Relation::*;
        match id {
            1 => SelfLoop,
            2 => Out,
            3 => In,
            4 => Both,
            5 => ItemToImage,
            6 => ImageToItem,
            7 => ItemToText,
            8 => TextToItem,
            9 => ImageToText,
            10 => TextToImage,
            other => panic!("relation id {other} out of range"),
        }
    }

    /// Homogeneous set {1, 2, 3, 4}: self-loops and transitions.
    pub fn is_homogeneous(self) -> bool {
        (self as u8) <= 4
    }

    /// Heterogeneous set {1, 5, ..., 10}: self-loops and cross-type links.
    pub fn is_heterogeneous(self) -> bool {
        self == Relation::SelfLoop || (self as u8) >= 5
    }
}
