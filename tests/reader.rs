//! Edge-list reader: formats in the wild, canonical ids, cleaning counts.

use spillover::graph::io::{read_edge_list_from, Header, ReadOptions, ThirdColumn, ThirdColumnUse};
use spillover::graph::{BuildOptions, Duplicates, SelfLoops};
use std::path::Path;

fn read(text: &str, opts: ReadOptions) -> (spillover::Graph, spillover::graph::io::ReadReport) {
    read_edge_list_from(text.as_bytes(), Path::new("test.txt"), &opts).expect("valid input")
}

fn edges(g: &spillover::Graph) -> Vec<(String, String, f64)> {
    g.edges()
        .map(|(u, v, w)| (g.label(u).into_owned(), g.label(v).into_owned(), w))
        .collect()
}

#[test]
fn separators_comments_and_headers() {
    let plain = "# c\n% c\n1 2\n2 3\n";
    let csv = "source,target\n1,2\n2,3\n";
    let tsv = "1\t2\n\n2\t3\n";
    let (a, ra) = read(plain, ReadOptions::default());
    let (b, rb) = read(csv, ReadOptions::default());
    let (c, _) = read(tsv, ReadOptions::default());
    assert_eq!(edges(&a), edges(&b));
    assert_eq!(edges(&a), edges(&c));
    assert_eq!(ra.comment_lines, 2);
    assert_eq!(rb.header.as_deref(), Some("source,target"));
    // A header of names the reader does not know is found by the next line's numbers.
    let (_, r) = read("alpha beta\n1 2\n", ReadOptions::default());
    assert_eq!(r.header.as_deref(), Some("alpha beta"));
    // With names as ids, no header is guessed.
    let (g, r) = read("alice bob\ncarol bob\n", ReadOptions::default());
    assert_eq!(r.header, None);
    assert_eq!(g.node_count(), 3);
    // Forced either way.
    let (g, _) = read(
        "1 2\n2 3\n",
        ReadOptions {
            header: Header::Yes,
            ..Default::default()
        },
    );
    assert_eq!(g.edge_count(), 1);
}

#[test]
fn dense_ids_are_canonical_whatever_the_line_order() {
    let a = "10 2\n2 33\n33 10\n7 2\n";
    let b = "7 2\n33 10\n2 33\n10 2\n";
    let (ga, _) = read(a, ReadOptions::default());
    let (gb, _) = read(b, ReadOptions::default());
    assert_eq!(ga, gb);
    // Numeric labels sorted numerically: 2, 7, 10, 33.
    let labels: Vec<String> = (0..4).map(|u| ga.label(u).into_owned()).collect();
    assert_eq!(labels, ["2", "7", "10", "33"]);
    // Names sorted lexicographically.
    let (g, _) = read("bob alice\ncarol bob\n", ReadOptions::default());
    let labels: Vec<String> = (0..3).map(|u| g.label(u).into_owned()).collect();
    assert_eq!(labels, ["alice", "bob", "carol"]);
}

#[test]
fn self_loops_and_duplicates_counted() {
    let text = "1 2\n2 1\n1 1\n1 1\n2 3\n";
    let (g, r) = read(text, ReadOptions::default());
    assert_eq!(g.edge_count(), 2);
    assert_eq!(r.build.self_loops_dropped, 2);
    assert_eq!(r.build.duplicates_merged, 1);
    let keep = ReadOptions {
        build: BuildOptions {
            self_loops: SelfLoops::Keep,
            duplicates: Duplicates::Sum,
        },
        ..Default::default()
    };
    let (g, r) = read(text, keep);
    assert_eq!(g.edge_count(), 3);
    assert_eq!(g.self_loop_count(), 1);
    assert_eq!(r.build.duplicates_merged, 2);
    // Directed: 1→2 and 2→1 are different arcs.
    let (g, r) = read(
        text,
        ReadOptions {
            directed: true,
            ..Default::default()
        },
    );
    assert_eq!(g.edge_count(), 3);
    assert_eq!(r.build.duplicates_merged, 0);
}

#[test]
fn weights_summed_or_maxed_and_timestamps_counted() {
    let text = "a b 2.5\nb a 1.5\nb c 4\n";
    let (g, r) = read(text, ReadOptions::default());
    assert_eq!(r.third_column, ThirdColumnUse::Weight);
    assert_eq!(
        edges(&g),
        [("a".into(), "b".into(), 4.0), ("b".into(), "c".into(), 4.0)]
    );
    let max = ReadOptions {
        build: BuildOptions {
            duplicates: Duplicates::Max,
            ..Default::default()
        },
        ..Default::default()
    };
    let (g, _) = read(text, max);
    assert_eq!(g.edges().next().map(|e| e.2), Some(2.5));
    // Unix times: each line is a message; weight = messages per directed pair.
    let log = "1 2 1082040961\n1 2 1082040999\n2 1 1082041000\n";
    let (g, r) = read(
        log,
        ReadOptions {
            directed: true,
            ..Default::default()
        },
    );
    assert_eq!(r.third_column, ThirdColumnUse::Timestamp);
    assert_eq!(
        edges(&g),
        [("1".into(), "2".into(), 2.0), ("2".into(), "1".into(), 1.0)]
    );
    // Small integers are weights unless the header or the option says time.
    let (_, r) = read("u v t\n1 2 5\n", ReadOptions::default());
    assert_eq!(r.third_column, ThirdColumnUse::Timestamp);
    let (g, r) = read(
        "1 2 5\n",
        ReadOptions {
            third_column: ThirdColumn::Ignore,
            ..Default::default()
        },
    );
    assert_eq!(r.third_column, ThirdColumnUse::None);
    assert!(!g.is_weighted());
}

#[test]
fn write_then_read_is_the_same_graph() {
    let (g, _) = read("x y 2\ny z 3\nz x 1\n", ReadOptions::default());
    let mut buf = Vec::new();
    spillover::graph::io::write_edges(&g, &mut buf, "round trip").unwrap();
    let (h, _) = read(std::str::from_utf8(&buf).unwrap(), ReadOptions::default());
    assert_eq!(g, h);
}

/// Issue 9: a UTF-8 byte-order mark is stripped (it used to turn the first
/// edge into a "header", or a string id into a phantom node).
#[test]
fn byte_order_mark_is_stripped() {
    let (plain, _) = read("1 2\n2 3\n", ReadOptions::default());
    let (bom, r) = read("\u{FEFF}1 2\n2 3\n", ReadOptions::default());
    assert_eq!(r.header, None);
    assert_eq!(edges(&plain), edges(&bom));
    let (named, r) = read("\u{FEFF}alice bob\ncarol bob\n", ReadOptions::default());
    assert_eq!(r.header, None);
    assert_eq!(named.node_count(), 3);
    assert!(edges(&named).iter().any(|(u, _, _)| u == "alice"));
    let (h, r) = read("\u{FEFF}source,target\n1,2\n", ReadOptions::default());
    assert_eq!(r.header.as_deref(), Some("source,target"));
    assert_eq!(h.edge_count(), 1);
}

/// Issue 9: a header repeated later in the file (concatenated exports) is an
/// error naming its line, not an edge between nodes "source" and "target".
#[test]
fn repeated_header_is_an_error_with_its_line() {
    let text = "source,target\n1,2\n2,3\nsource,target\n3,4\n";
    let err = read_edge_list_from(
        text.as_bytes(),
        Path::new("cat.csv"),
        &ReadOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("cat.csv:4:"), "{msg}");
    assert!(msg.contains("repeats the header"), "{msg}");
    assert_eq!(err.exit_code(), 2);
}

/// Ids are text: "7" and "007", "0" and "00" are different users, numbers
/// and names mix, and the largest plain numbers (19 digits and beyond) keep
/// their spelling. (Plain decimals are looked up by value, the rest by text.)
#[test]
fn numeric_ids_keep_their_spelling() {
    let text = "7 007\n007 x\n7 0\n00 0\n9999999999999999999 18446744073709551616\n\
                18446744073709551616 7\n+7 7\n";
    let (g, _) = read(text, ReadOptions::default());
    let mut labels: Vec<String> = (0..g.node_count() as u32)
        .map(|u| g.label(u).into_owned())
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            "+7",
            "0",
            "00",
            "007",
            "18446744073709551616",
            "7",
            "9999999999999999999",
            "x"
        ]
    );
    let got = edges(&g);
    assert!(got
        .iter()
        .any(|(a, b, _)| (a == "7" && b == "007") || (a == "007" && b == "7")));
    assert!(got
        .iter()
        .any(|(a, b, _)| (a == "00" && b == "0") || (a == "0" && b == "00")));
    assert_eq!(got.len(), 7);
}
