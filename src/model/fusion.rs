//! The fusion references of the MMSR paper's argument (graph fusion against the two classic
//! styles), both on SASRec's encoder and on the same item vectors: each item's image and text
//! features reduced as for the codes (spec §2.3; stored with the codes), with a learned
//! "missing" vector where an item lacks a modality, never zeros that look like data.
//!
//! * `sasrec-early`: early fusion. Per item, `Linear([item embedding ‖ image ‖ text])` gives one
//!   fused vector; the sequence encoder reads the fused vectors and scores against them.
//! * `sasrec-late`: late fusion. One encoder per channel (item ids, image, text), each over its
//!   own item vectors; the scores are the sum of the channels' scores.

use tch::{nn, nn::Module, Tensor};

use super::sequence::sasrec::{
    validate_config, SasRecConfig, SasRecEncoder, TrainingTargets,
    OPTIONAL_PARAMETERS as SASREC_OPTIONAL,
};
use super::sequence::{embed_rows, loss_against, scores_against, ItemTable, SequenceBatch};
use super::{Batch, InputKind, Model, ModelContext, Recommender};
use crate::modality::Modality;

/// One modality's reduced item vectors as a constant table, missing rows filled by a learned
/// vector.
struct ModalityVectors {
    /// [I + 1, r], zero rows where the item lacks the modality.
    values: Tensor,
    /// [I + 1, 1], 1.0 where the item has the modality.
    present: Tensor,
    missing: Tensor,
    modality: Modality,
}

impl ModalityVectors {
    /// The modality's vectors, or `None` when the dataset stores none for it.
    fn new(path: &nn::Path, modality: Modality, context: &ModelContext) -> Option<Self> {
        let book = context.dataset.codes.as_ref()?.book(modality)?;
        let dim = book.reduced_dim as i64;
        if dim == 0 {
            return None;
        }
        let rows = book.links.len() as i64;
        let present: Vec<f32> = (0..book.links.len())
            .map(|i| f32::from(u8::from(book.reduced_vector(i).is_some())))
            .collect();
        let device = path.device();
        Some(Self {
            values: Tensor::from_slice(&book.reduced)
                .view([rows, dim])
                .to_device(device),
            present: Tensor::from_slice(&present)
                .view([rows, 1])
                .to_device(device),
            missing: path.var(
                &format!("missing_{}", modality.name()),
                &[dim],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            modality,
        })
    }

    fn dim(&self) -> i64 {
        self.values.size()[1]
    }

    /// [I + 1, r]: the item's vector where it has the modality, the learned one elsewhere.
    fn filled(&self) -> Tensor {
        &self.values * &self.present + (1.0 - &self.present) * self.missing.unsqueeze(0)
    }

    /// [B, L, r]: per history position, the item's filled vector, or the learned missing
    /// vector where the missing-modality study hides the modality (`dropped`, bool [B, L]).
    fn at_positions(&self, items: &Tensor, dropped: &Tensor) -> Tensor {
        let rows = Tensor::embedding(&self.filled(), items, 0, false, false);
        rows.where_self(&dropped.logical_not().unsqueeze(-1), &self.missing)
    }
}

/// Zeros at the padding positions of `values` [B, L, D] (item id 0).
fn zero_padding(values: Tensor, items: &Tensor) -> Tensor {
    values * items.ne(0).unsqueeze(-1).to_kind(tch::Kind::Float)
}

/// The modalities with stored vectors: none on a dataset without any modality (the reference then
/// fuses nothing and models item ids alone); an error when codes exist without their vectors.
fn modality_vectors(
    path: &nn::Path,
    context: &ModelContext,
) -> Result<Vec<ModalityVectors>, String> {
    let found: Vec<ModalityVectors> = Modality::ALL
        .iter()
        .filter_map(|&m| ModalityVectors::new(path, m, context))
        .collect();
    if found.is_empty() && context.dataset.codes.is_some() {
        return Err("the dataset stores no reduced modality vectors (no item features, official pickles, or a dataset prepared before they were stored): re-run `mmsr-bench prepare`, or use sasrec".into());
    }
    Ok(found)
}

pub struct SasRecEarly {
    config: SasRecConfig,
    items: ItemTable,
    modalities: Vec<ModalityVectors>,
    fuse: nn::Linear,
    encoder: SasRecEncoder,
}

impl SasRecEarly {
    /// The fused item table [I + 1, D].
    fn fused_table(&self) -> Tensor {
        let mut parts = vec![self.items.table().shallow_clone()];
        parts.extend(self.modalities.iter().map(ModalityVectors::filled));
        self.fuse.forward(&Tensor::cat(&parts, 1))
    }

    /// The fused vector of each history position [B, L, D]: the table's row, or, where the
    /// study hides a modality, the fusion of what is left with the missing vector.
    fn inputs(&self, table: &Tensor, input: &SequenceBatch) -> Tensor {
        if !input.any_dropped() {
            return embed_rows(table, &input.items);
        }
        let mut parts = vec![self.items.embed(&input.items)];
        for vectors in &self.modalities {
            parts.push(match input.dropped(vectors.modality) {
                Some(dropped) => vectors.at_positions(&input.items, dropped),
                None => Tensor::embedding(&vectors.filled(), &input.items, 0, false, false),
            });
        }
        zero_padding(self.fuse.forward(&Tensor::cat(&parts, 2)), &input.items)
    }

    fn states(&self, table: &Tensor, input: &SequenceBatch, train: bool) -> Tensor {
        input.encode_by_length(|part| self.encoder.states(&self.inputs(table, part), part, train))
    }
}

impl Model for SasRecEarly {
    type Config = SasRecConfig;
    /// 2: length buckets and SASRec's last block at the last item only (other dropout draws
    /// and rounding, so other numbers).
    const VERSION: u32 = 2;
    const OPTIONAL_PARAMETERS: &'static [&'static str] = SASREC_OPTIONAL;

    fn input_kind(_config: &SasRecConfig) -> InputKind {
        InputKind::Sequence
    }

    fn validate(c: &SasRecConfig) -> Result<(), String> {
        validate_fusion_config(c)
    }

    fn new(path: &nn::Path, c: &SasRecConfig, context: &ModelContext) -> Result<Self, String> {
        let num_items = context.dataset.num_items() as i64;
        let items = ItemTable::new(path, num_items, c.dim);
        let modalities = modality_vectors(path, context)?;
        let width = c.dim + modalities.iter().map(ModalityVectors::dim).sum::<i64>();
        Ok(Self {
            config: c.clone(),
            items,
            modalities,
            fuse: nn::linear(path / "fuse", width, c.dim, Default::default()),
            encoder: SasRecEncoder::new(path, c),
        })
    }
}

impl Recommender for SasRecEarly {
    fn scores(&self, batch: &Batch, train: bool) -> Tensor {
        let table = self.fused_table();
        scores_against(&self.states(&table, batch.sequence(), train), &table)
    }

    fn loss(&self, batch: &Batch) -> Tensor {
        let table = self.fused_table();
        let states = self.states(&table, batch.sequence(), true);
        loss_against(&states, &table, &batch.targets, self.config.loss)
    }
}

/// One channel of late fusion: its item vectors and its own encoder.
struct Channel {
    modality: Option<(ModalityVectors, nn::Linear)>,
    encoder: SasRecEncoder,
}

pub struct SasRecLate {
    config: SasRecConfig,
    items: ItemTable,
    channels: Vec<Channel>,
}

impl SasRecLate {
    /// Per channel, its item table [I + 1, D] and the states [B, D]; concatenated along the
    /// width, so one dot product sums the channels' scores.
    fn tables_and_states(&self, input: &SequenceBatch, train: bool) -> (Tensor, Tensor) {
        let (mut tables, mut states) = (Vec::new(), Vec::new());
        for channel in &self.channels {
            let table = match &channel.modality {
                None => self.items.table().shallow_clone(),
                Some((vectors, project)) => project.forward(&vectors.filled()),
            };
            states.push(input.encode_by_length(|part| {
                let hidden = channel.modality.as_ref().and_then(|(vectors, project)| {
                    let dropped = part.dropped(vectors.modality)?;
                    Some((vectors.at_positions(&part.items, dropped), project))
                });
                let embedded = match hidden {
                    Some((at_positions, project)) => {
                        zero_padding(project.forward(&at_positions), &part.items)
                    }
                    None => embed_rows(&table, &part.items),
                };
                channel.encoder.states(&embedded, part, train)
            }));
            tables.push(table);
        }
        (Tensor::cat(&tables, 1), Tensor::cat(&states, 1))
    }
}

impl Model for SasRecLate {
    type Config = SasRecConfig;
    /// 2: length buckets and SASRec's last block at the last item only (other dropout draws
    /// and rounding, so other numbers).
    const VERSION: u32 = 2;
    const OPTIONAL_PARAMETERS: &'static [&'static str] = SASREC_OPTIONAL;

    fn input_kind(_config: &SasRecConfig) -> InputKind {
        InputKind::Sequence
    }

    fn validate(c: &SasRecConfig) -> Result<(), String> {
        validate_fusion_config(c)
    }

    fn new(path: &nn::Path, c: &SasRecConfig, context: &ModelContext) -> Result<Self, String> {
        let num_items = context.dataset.num_items() as i64;
        let items = ItemTable::new(path, num_items, c.dim);
        let mut channels = vec![Channel {
            modality: None,
            encoder: SasRecEncoder::new(&(path / "items"), c),
        }];
        for vectors in modality_vectors(path, context)? {
            let channel_path = path / format!("channel{}", channels.len());
            let project = nn::linear(
                &channel_path / "project",
                vectors.dim(),
                c.dim,
                Default::default(),
            );
            channels.push(Channel {
                modality: Some((vectors, project)),
                encoder: SasRecEncoder::new(&channel_path, c),
            });
        }
        Ok(Self {
            config: c.clone(),
            items,
            channels,
        })
    }
}

impl Recommender for SasRecLate {
    fn scores(&self, batch: &Batch, train: bool) -> Tensor {
        let (table, states) = self.tables_and_states(batch.sequence(), train);
        scores_against(&states, &table)
    }

    fn loss(&self, batch: &Batch) -> Tensor {
        let (table, states) = self.tables_and_states(batch.sequence(), true);
        loss_against(&states, &table, &batch.targets, self.config.loss)
    }
}

/// SASRec's checks, and the last-item training the fusion references implement.
fn validate_fusion_config(c: &SasRecConfig) -> Result<(), String> {
    if c.targets != TrainingTargets::LastItem {
        return Err("targets = every-position is implemented for sasrec only".into());
    }
    validate_config(c)
}
