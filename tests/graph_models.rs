//! Every graph model of the registry: the dense and sparse paths agree (forward and gradients),
//! padding never influences a sample's scores, and the HAN-GNN variants compute what their
//! names say.

use crate::common::zoo;

use mmsr_bench::eval::Metric;
use mmsr_bench::model::{InputKind, REGISTRY};
use mmsr_bench::train::evaluation::evaluate;
use serde_json::json;
use tch::{Kind, Tensor};
use zoo::{build, gradients, inputs, max_abs_diff, random_dataset, source, with_dropout};

/// Registry entries with both a dense and a sparse implementation.
fn both_layouts() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| {
            ["dense", "sparse"].iter().all(|layout| {
                let mut spec = mmsr_bench::config::ModelSpec::named(e.name);
                spec.params.insert("layout".into(), json!(layout));
                mmsr_bench::model::resolve(&spec).is_ok()
            })
        })
        .map(|e| e.name)
        .collect()
}

fn graph_entries() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| {
            let spec = mmsr_bench::config::ModelSpec::named(e.name);
            matches!(
                mmsr_bench::model::resolve(&spec).unwrap().kind,
                InputKind::Graph(_)
            )
        })
        .map(|e| e.name)
        .collect()
}

fn params(layout: &str, layers: usize, tied: bool) -> serde_json::Value {
    json!({"layout": layout, "dim": 16, "layers": layers, "tied_layers": tied})
}

/// Forward (1e-5) and every gradient (1e-5) agree between the two layouts, in train mode with
/// every dropout at 0 (so training-only branches run) and in eval mode.
#[test]
fn dense_and_sparse_agree_for_every_model_with_both_paths() {
    let _rng = crate::common::torch_rng();
    let names = both_layouts();
    assert!(names.len() >= 17, "{names:?}");
    assert!(!names.contains(&"graphormer") && names.contains(&"gat"));
    let data = random_dataset(3);
    let indices: Vec<usize> = (0..data.splits.train.len()).step_by(3).take(48).collect();
    for name in names {
        for (layers, tied) in [(1, true), (2, true), (2, false)] {
            if layers == 2 && !["han-gnn", "han-gnn-fixed", "gcn", "gat", "rgat"].contains(&name) {
                continue;
            }
            for train in [true, false] {
                let build_layout = |layout: &str| {
                    let p = with_dropout(name, params(layout, layers, tied), 0.0);
                    build(name, p, &data, 11)
                };
                let (dense, sparse) = (build_layout("dense"), build_layout("sparse"));
                let kind = |b: &zoo::Built| b.resolved.kind;
                let (di, si) = (
                    inputs(&data, &data.splits.train, kind(&dense)),
                    inputs(&data, &data.splits.train, kind(&sparse)),
                );
                let dense_batch =
                    source(&data.splits.train, di.as_ref(), kind(&dense)).batch(&indices);
                let sparse_batch =
                    source(&data.splits.train, si.as_ref(), kind(&sparse)).batch(&indices);
                let a = dense.model.model.scores(&dense_batch, train);
                let b = sparse.model.model.scores(&sparse_batch, train);
                let label = format!("{name}, {layers} layer(s), tied {tied}, train {train}");
                assert_eq!(a.size(), vec![48, 40], "{label}");
                let diff = max_abs_diff(&a, &b);
                assert!(diff < 1e-5, "{label}: forward differs by {diff}");
                assert!(
                    a.abs().max().double_value(&[]) > 1e-3,
                    "{label}: scores not trivially zero"
                );

                a.cross_entropy_for_logits(&dense_batch.targets).backward();
                b.cross_entropy_for_logits(&sparse_batch.targets).backward();
                let (gd, gs) = (gradients(&dense.vs), gradients(&sparse.vs));
                assert_eq!(gd.len(), gs.len(), "{label}");
                for ((variable, x), (_, y)) in gd.iter().zip(&gs) {
                    let diff = max_abs_diff(x, y);
                    assert!(
                        diff < 1e-5,
                        "{label}: gradient of {variable} differs by {diff}"
                    );
                }
                let total: f64 = gd
                    .iter()
                    .map(|(_, g)| g.abs().sum(Kind::Double).double_value(&[]))
                    .sum();
                assert!(total > 0.0, "{label}: gradients flow");
            }
        }
    }
}

/// Registry entries whose sparse layout takes `edge_kernels: fused`.
fn fused_entries() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| {
            let mut spec = mmsr_bench::config::ModelSpec::named(e.name);
            spec.params.insert("edge_kernels".into(), json!("fused"));
            mmsr_bench::model::resolve(&spec).is_ok()
        })
        .map(|e| e.name)
        .collect()
}

/// The fused edge kernels compute the eager sparse path's function: forward and every gradient
/// within 1e-5, in eval mode and in train mode with the models' own dropout (both paths draw
/// the same masks from the same seed); models without them refuse the setting.
#[test]
fn fused_edge_kernels_agree_with_the_eager_sparse_path() {
    let _rng = crate::common::torch_rng();
    let names = fused_entries();
    assert!(
        names.contains(&"han-gnn") && names.contains(&"han-gnn-fixed") && names.len() >= 10,
        "{names:?}"
    );
    assert!(["kv-attention", "gcn", "graphsage", "gat", "rgat", "hgt"]
        .iter()
        .all(|n| names.contains(n)));
    for (name, layout) in [
        ("gat", "dense"),
        ("han-gnn", "dense"),
        ("graphormer", "dense"),
    ] {
        let mut spec = mmsr_bench::config::ModelSpec::named(name);
        spec.params.insert("edge_kernels".into(), json!("fused"));
        spec.params.insert("layout".into(), json!(layout));
        let refused = mmsr_bench::model::resolve(&spec).expect_err("refused");
        assert!(
            refused.to_string().contains("edge_kernels"),
            "{name}: {refused}"
        );
    }

    let data = random_dataset(5);
    let indices: Vec<usize> = (0..data.splits.train.len()).step_by(2).take(40).collect();
    for name in names {
        for (layers, train) in [(1, false), (1, true), (2, true)] {
            let build_with = |kernels: &str| {
                let mut p = params("sparse", layers, true);
                p["edge_kernels"] = json!(kernels);
                build(name, p, &data, 13)
            };
            let (eager, fused) = (build_with("eager"), build_with("fused"));
            let kind = eager.resolved.kind;
            let graphs = inputs(&data, &data.splits.train, kind);
            let batch = source(&data.splits.train, graphs.as_ref(), kind).batch(&indices);
            let label = format!("{name}, {layers} layer(s), train {train}");
            let scores = |b: &zoo::Built| {
                tch::manual_seed(17);
                b.model.model.scores(&batch, train)
            };
            let (a, b) = (scores(&eager), scores(&fused));
            let diff = max_abs_diff(&a, &b);
            assert!(diff < 1e-5, "{label}: forward differs by {diff}");
            a.cross_entropy_for_logits(&batch.targets).backward();
            b.cross_entropy_for_logits(&batch.targets).backward();
            let (ge, gf) = (gradients(&eager.vs), gradients(&fused.vs));
            assert_eq!(ge.len(), gf.len(), "{label}");
            for ((variable, x), (_, y)) in ge.iter().zip(&gf) {
                let diff = max_abs_diff(x, y);
                assert!(
                    diff < 1e-5,
                    "{label}: gradient of {variable} differs by {diff}"
                );
            }
        }
    }
}

/// A sample's scores do not depend on what else is in its batch: padding (dense) and the other
/// graphs (sparse) never leak into them.
#[test]
fn padding_and_batch_neighbours_never_influence_scores() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(4);
    let test = &data.splits.test;
    let all: Vec<usize> = (0..test.len().min(40)).collect();
    let mut checked = 0;
    for name in graph_entries() {
        for layout in ["dense", "sparse"] {
            let mut spec = mmsr_bench::config::ModelSpec::named(name);
            spec.params.insert("layout".into(), json!(layout));
            if mmsr_bench::model::resolve(&spec).is_err() {
                continue;
            }
            checked += 1;
            let built = build(name, json!({"layout": layout, "dim": 16}), &data, 5);
            let kind = built.resolved.kind;
            let graph_inputs = inputs(&data, test, kind);
            let src = source(test, graph_inputs.as_ref(), kind);
            let together = tch::no_grad(|| built.model.model.scores(&src.batch(&all), false));
            for &i in all.iter().step_by(7) {
                let alone = tch::no_grad(|| built.model.model.scores(&src.batch(&[i]), false));
                let diff = max_abs_diff(&together.get(i as i64), &alone.get(0));
                assert!(diff < 1e-5, "{name} ({layout}), sample {i}: {diff}");
            }
        }
    }
    // Every graph model in both layouts, but the three that have one: graphormer (dense only),
    // hgt and hgt-lang (sparse only). A layout that stops resolving fails here, not silently.
    let entries = graph_entries().len();
    assert!(entries >= 20, "{entries} graph entries");
    assert_eq!(checked, 2 * entries - 3, "(model, layout) cases checked");
}

fn scores_of(name: &str, params: serde_json::Value, seed: i64) -> Tensor {
    let data = random_dataset(7);
    let built = build(name, params, &data, seed);
    let kind = built.resolved.kind;
    let graph_inputs = inputs(&data, &data.splits.train, kind);
    let batch =
        source(&data.splits.train, graph_inputs.as_ref(), kind).batch(&(0..16).collect::<Vec<_>>());
    tch::no_grad(|| built.model.model.scores(&batch, false))
}

#[test]
fn han_gnn_variants_compute_what_their_names_say() {
    let _rng = crate::common::torch_rng();
    let base = scores_of("han-gnn", json!({"dim": 16}), 3);
    // Every ablation and variant changes the function.
    for entry in REGISTRY
        .iter()
        .filter(|e| e.family.name == "han-gnn" && e.name != "han-gnn")
    {
        let diff = max_abs_diff(&base, &scores_of(entry.name, json!({"dim": 16}), 3));
        if entry.name == "han-gnn-hohe" || entry.name == "han-gnn-no-homo" {
            continue; // checked below
        }
        assert!(
            diff > 1e-4,
            "{} must differ from han-gnn ({diff})",
            entry.name
        );
    }
    // compat's homo-first order takes its scores from the original Q, K (spec §4.7 quirk 2): in
    // eval mode it is exactly the phase-1 heterogeneous update, i.e. "without homogeneous".
    let hohe = scores_of("han-gnn-hohe", json!({"dim": 16}), 3);
    let hete = scores_of("han-gnn-no-homo", json!({"dim": 16}), 3);
    assert!(hohe.equal(&hete));
    assert!(max_abs_diff(&hohe, &base) > 1e-4);
    // In fixed mode the homo-first order does use phase 1.
    let fixed_hohe = scores_of("han-gnn-fixed", json!({"dim": 16, "fusion": "hohe"}), 3);
    let fixed_hete = scores_of("han-gnn-fixed", json!({"dim": 16, "fusion": "hete"}), 3);
    assert!(max_abs_diff(&fixed_hohe, &fixed_hete) > 1e-4);
}

#[test]
fn presets_count_only_the_parameters_they_use() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(2);
    let count = |name: &str| {
        build(name, json!({"dim": 16}), &data, 1)
            .model
            .num_parameters
    };
    let (han, fixed) = (count("han-gnn"), count("han-gnn-fixed"));
    assert_eq!(fixed - han, 2 * 4 * 16 * 16, "W_K and W_V");
    let gate = 16 * 16 + 16 + 16;
    assert_eq!(
        han - count("han-gnn-no-homo"),
        gate + 4 * 16,
        "no gate, no a_r"
    );
    assert_eq!(count("han-gnn-concat") - han, 2 * 16 * 16 + 16 - gate);
    assert_eq!(
        han - count("han-gnn-no-type"),
        4 * 16 + 16 * 16,
        "type table and its projection rows"
    );
    assert!(count("items-only") < han, "no code rows");
}

/// Dense evaluation visits graphs in size order, sparse in input order; a pass over a split must
/// still give the same metrics, and the dense order must be a permutation sorted by node count.
#[test]
fn evaluation_passes_agree_across_layouts_and_orders() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(9);
    let test = &data.splits.test;
    let dense = build(
        "han-gnn",
        json!({"layout": "dense", "dim": 16, "dropout": 0.3}),
        &data,
        11,
    );
    let sparse = build(
        "han-gnn",
        json!({"layout": "sparse", "dim": 16, "dropout": 0.3}),
        &data,
        11,
    );
    let (dk, sk) = (dense.resolved.kind, sparse.resolved.kind);
    let (di, si) = (inputs(&data, test, dk), inputs(&data, test, sk));
    let (dense_source, sparse_source) =
        (source(test, di.as_ref(), dk), source(test, si.as_ref(), sk));
    let order = dense_source.evaluation_order();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..test.len()).collect::<Vec<_>>());
    let graphs = &di.as_ref().unwrap().graphs;
    assert!(order
        .windows(2)
        .all(|w| graphs.graph(w[0]).num_nodes() <= graphs.graph(w[1]).num_nodes()));
    assert_eq!(
        sparse_source.evaluation_order(),
        (0..test.len()).collect::<Vec<_>>()
    );
    let ks = [1, 5, 20];
    let a = evaluate(dense.model.model.as_ref(), &dense_source, &ks, 7).unwrap();
    let b = evaluate(sparse.model.model.as_ref(), &sparse_source, &ks, 7).unwrap();
    for k in ks {
        for metric in [Metric::Hr, Metric::Ndcg, Metric::Mrr] {
            let (x, y) = (a.get(metric, k).unwrap(), b.get(metric, k).unwrap());
            assert!((x - y).abs() < 1e-9, "{metric:?}@{k}: {x} vs {y}");
        }
    }
}

#[test]
fn graphormer_reads_distances_and_degrees() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(6);
    let built = build("graphormer", json!({"dim": 16}), &data, 2);
    let InputKind::Graph(input) = built.resolved.kind else {
        panic!()
    };
    assert!(input.structure);
    let graph_inputs = inputs(&data, &data.splits.train, built.resolved.kind).unwrap();
    let src = source(&data.splits.train, Some(&graph_inputs), built.resolved.kind);
    let batch = src.batch(&[0, 1, 2]);
    let mmsr_bench::model::BatchInput::Graph(mmsr_bench::graph::GraphBatch::Dense(dense)) =
        &batch.input
    else {
        panic!("dense batch")
    };
    let structure = dense.structure.as_ref().expect("structure attached");
    let n = dense.nodes.size()[1];
    assert_eq!(structure.distances.size(), vec![3, n, n]);
    // Distances are 0 on real diagonals, the unreachable bucket on padding.
    let real = Vec::<f32>::try_from(dense.real.view([-1])).unwrap();
    let distances = Vec::<i64>::try_from(structure.distances.view([-1])).unwrap();
    for (i, &r) in real.iter().enumerate() {
        let (b, node) = (i as i64 / n, i as i64 % n);
        let d = distances[((b * n + node) * n + node) as usize];
        assert_eq!(d, if r > 0.0 { 0 } else { 9 }, "node {i}");
    }
    // Changing the structure changes the scores: the encodings are wired in.
    let scores = tch::no_grad(|| built.model.model.scores(&batch, false));
    let mut moved = batch;
    if let mmsr_bench::model::BatchInput::Graph(mmsr_bench::graph::GraphBatch::Dense(d)) =
        &mut moved.input
    {
        let s = d.structure.as_mut().unwrap();
        s.distances = s.distances.ones_like() * 9;
        s.in_degree = s.in_degree.zeros_like();
    }
    let other = tch::no_grad(|| built.model.model.scores(&moved, false));
    assert!(max_abs_diff(&scores, &other) > 1e-5);
}

/// Evaluation reads each graph's receptive field (`graph::receptive`): for every graph model that
/// declares one, in each layout, with one layer and with two untied layers, the scores on pruned
/// graphs equal those on whole graphs (1e-5), and pruning removes edges. The reach is tight
/// where it matters: one step less moves the one-layer scores of HAN-GNN (its heho branch scores
/// phase-1 results) and of GCN (it reads its neighbours' degrees).
#[test]
fn receptive_field_pruning_leaves_evaluation_scores_unchanged() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(8);
    let test = &data.splits.test;
    let all: Vec<usize> = (0..test.len()).collect();
    let mut checked = 0;
    for name in graph_entries() {
        for layout in ["dense", "sparse"] {
            for (layers, tied) in [(1, true), (2, false)] {
                let mut spec = mmsr_bench::config::ModelSpec::named(name);
                spec.params.insert("layout".into(), json!(layout));
                if mmsr_bench::model::resolve(&spec).is_err() {
                    continue;
                }
                let built = build(name, params(layout, layers, tied), &data, 9);
                let kind = built.resolved.kind;
                let InputKind::Graph(input) = kind else {
                    unreachable!()
                };
                let Some(reach) = input.receptive_reach else {
                    assert_eq!(name, "graphormer", "only Graphormer reads whole graphs");
                    continue;
                };
                let label =
                    format!("{name} ({layout}, {layers} layers, tied {tied}, reach {reach})");
                let whole = inputs(&data, test, kind).unwrap();
                let scores = |graphs: mmsr_bench::graph::GraphSet| {
                    let pruned = zoo::Inputs {
                        graphs,
                        structure: None,
                    };
                    let batch = source(test, Some(&pruned), kind).batch(&all);
                    tch::no_grad(|| built.model.model.scores(&batch, false))
                };
                let reference = scores(whole.graphs.clone());
                let cut = whole.graphs.receptive_field(reach);
                assert!(
                    reach >= 3 || cut.stats().total_edges < whole.graphs.stats().total_edges,
                    "{label}: pruning removed nothing"
                );
                let diff = max_abs_diff(&reference, &scores(cut));
                assert!(diff < 1e-5, "{label}: pruned scores moved by {diff}");
                if layers == 1 && ["han-gnn", "gcn"].contains(&name) {
                    let short =
                        max_abs_diff(&reference, &scores(whole.graphs.receptive_field(reach - 1)));
                    assert!(
                        short > 1e-5,
                        "{label}: one step less reads everything too ({short})"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "{checked} configurations checked");
}

/// `train_on_receptive_fields`: with every dropout at 0, the training loss and every gradient on
/// pruned graphs equal those on whole graphs (1e-5); the option is part of the parameters only
/// when set, so the run ids of whole-graph runs do not change.
#[test]
fn training_on_receptive_fields_gives_the_same_loss_and_gradients() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(10);
    let train = &data.splits.train;
    let indices: Vec<usize> = (0..train.len()).step_by(2).take(64).collect();
    for (name, layout) in [
        ("han-gnn", "sparse"),
        ("han-gnn", "dense"),
        ("han-gnn-fixed", "sparse"),
        ("gcn", "sparse"),
        ("kv-attention", "sparse"),
        ("hgt", "sparse"),
    ] {
        let default = build(name, json!({"layout": layout, "dim": 16}), &data, 12);
        let params = default.resolved.params.as_object().unwrap();
        assert!(!params.contains_key("train_on_receptive_fields"), "{name}");
        let p = with_dropout(
            name,
            json!({"layout": layout, "dim": 16, "train_on_receptive_fields": true}),
            0.0,
        );
        let (whole, cut) = (build(name, p.clone(), &data, 12), build(name, p, &data, 12));
        assert_eq!(
            cut.resolved.params["train_on_receptive_fields"],
            json!(true),
            "{name}"
        );
        let kind = cut.resolved.kind;
        let InputKind::Graph(input) = kind else {
            unreachable!()
        };
        assert!(input.receptive_training, "{name}");
        let whole_inputs = inputs(&data, train, kind).unwrap();
        let cut_inputs = zoo::Inputs {
            graphs: whole_inputs
                .graphs
                .receptive_field(input.receptive_reach.unwrap()),
            structure: None,
        };
        let loss = |built: &zoo::Built, graphs: &zoo::Inputs| {
            let batch = source(train, Some(graphs), kind).batch(&indices);
            let loss = built.model.model.loss(&batch);
            loss.backward();
            loss.double_value(&[])
        };
        let (a, b) = (loss(&whole, &whole_inputs), loss(&cut, &cut_inputs));
        let label = format!("{name} ({layout})");
        assert!((a - b).abs() < 1e-5, "{label}: loss {a} against {b}");
        let (ga, gb) = (gradients(&whole.vs), gradients(&cut.vs));
        for ((variable, x), (_, y)) in ga.iter().zip(&gb) {
            let diff = max_abs_diff(x, y);
            assert!(
                diff < 1e-5,
                "{label}: gradient of {variable} differs by {diff}"
            );
        }
    }
}

/// A sparse batch builds and copies only the edge lists its layer reads: HAN-GNN's two phases
/// (`han-gnn*`, `items-only`) read the homogeneous and heterogeneous lists, every other graph
/// layer the list of all edges;
/// the phase lists are exactly the all-edge list filtered by relation (spec §3).
#[test]
fn sparse_batches_carry_the_edge_lists_their_layer_reads() {
    use mmsr_bench::graph::{EdgeLists, GraphSet, SparseGraphBatch};
    for name in graph_entries() {
        let spec = mmsr_bench::config::ModelSpec::named(name);
        let InputKind::Graph(graph) = mmsr_bench::model::resolve(&spec).unwrap().kind else {
            unreachable!()
        };
        // `items-only` is HAN-GNN on the item sub-graph.
        let want = if name.starts_with("han-gnn") || name == "items-only" {
            EdgeLists::Phases
        } else {
            EdgeLists::All
        };
        assert_eq!(graph.edge_lists, want, "{name}");
    }

    let data = random_dataset(5);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = GraphSet::build(&data.splits.test, Some(&bundles));
    let samples: Vec<usize> = (0..graphs.len().min(40)).collect();
    let cpu = tch::Device::Cpu;
    let all = SparseGraphBatch::assemble(&graphs, &samples, EdgeLists::All, cpu);
    let phases = SparseGraphBatch::assemble(&graphs, &samples, EdgeLists::Phases, cpu);
    assert_eq!(all.edge_lists(), EdgeLists::All);
    assert_eq!(phases.edge_lists(), EdgeLists::Phases);
    let list = |t: &Tensor| Vec::<i64>::try_from(t).unwrap();
    let triples = |rows: &Tensor, cols: &Tensor, relations: &Tensor| -> Vec<(i64, i64, i64)> {
        (list(rows).into_iter())
            .zip(list(cols))
            .zip(list(relations))
            .map(|((r, c), rel)| (r, c, rel))
            .collect()
    };
    let e = all.all_edges();
    let edges = triples(&e.rows, &e.cols, &e.relations);
    let p = phases.phase_edges();
    let homo = triples(&p.homo_rows, &p.homo_cols, &p.homo_relations);
    let hete: Vec<(i64, i64)> = list(&p.hete_rows)
        .into_iter()
        .zip(list(&p.hete_cols))
        .collect();
    let want_homo: Vec<_> = edges
        .iter()
        .filter(|e| (1..=4).contains(&e.2))
        .copied()
        .collect();
    let want_hete: Vec<_> = edges
        .iter()
        .filter(|e| e.2 == 1 || (5..=10).contains(&e.2))
        .map(|e| (e.0, e.1))
        .collect();
    assert!(!want_homo.is_empty() && want_hete.len() > want_homo.len() / 4);
    assert_eq!(homo, want_homo);
    assert_eq!(hete, want_hete);
    assert_eq!(list(&all.nodes), list(&phases.nodes));
    assert_eq!(list(&all.last), list(&phases.last));
}
