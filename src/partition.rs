//! Partitions: the unit of work, resume and commit.
//!
//! Inputs are split into partitions of whole files, or byte ranges of large files, numbered in
//! the sorted order of the input listing, so every worker computes the same list:
//!
//! ```text
//! a.warc.gz (600 MB, partition_bytes = 256 MB)   b.jsonl (10 MB)
//! |-- part-00000 --|-- part-00001 --|-- 00002 --|   |-- part-00003 --|
//! 0              256M             512M       600M
//! ```
//!
//! A byte range holds the records whose first byte lies inside it (the reader aligns both ends
//! to record starts), so ranges never lose or repeat a record. Worker `i` of `N` takes the
//! partitions `p` with `p % N == i`. Later map phases keep the numbering: partition `p` of
//! phase `k + 1` reads what partition `p` of phase `k` wrote.

use serde::{Deserialize, Serialize};
use stages::read::Format;

use crate::storage::InputObject;

/// One partition of the first phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSpec {
    pub id: usize,
    pub uri: String,
    pub format: Format,
    /// Byte range `start..end` of the file (before alignment to record starts); `end = None`
    /// means to the end of the file.
    pub start: u64,
    pub end: Option<u64>,
    pub size: u64,
    /// Parquet: the row groups `start..end` this partition reads (`None`: the whole file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_groups: Option<(usize, usize)>,
}

impl PartitionSpec {
    pub fn name(&self) -> String {
        part_name(self.id)
    }

    /// How the partition is shown in stats and logs: the file and its range, if any.
    pub fn describe(&self) -> String {
        match (self.row_groups, self.end) {
            (Some((a, b)), _) => format!("{} row groups [{a}..{b})", self.uri),
            (None, Some(e)) => format!("{} [{}..{e})", self.uri, self.start),
            (None, None) if self.start > 0 => format!("{} [{}..)", self.uri, self.start),
            (None, None) => self.uri.clone(),
        }
    }
}

/// `part-00042`.
pub fn part_name(id: usize) -> String {
    format!("part-{id:05}")
}

/// Whether byte ranges of a file can be aligned to record starts.
pub fn splittable(uri: &str, format: Format) -> bool {
    let u = uri.to_ascii_lowercase();
    match format {
        // Per-record gzip members (Common Crawl) or plain: records can be found from any offset.
        Format::Warc | Format::Wet => {
            u.ends_with(".gz") || u.ends_with(".warc") || u.ends_with(".wet")
        }
        Format::Jsonl => !(u.ends_with(".gz") || u.ends_with(".zst") || u.ends_with(".zstd")),
        Format::Parquet => false,
    }
}

/// Splits inputs into partitions.
pub fn split(
    inputs: &[InputObject],
    format: Option<Format>,
    partition_bytes: u64,
) -> Result<Vec<PartitionSpec>, String> {
    let mut out = Vec::new();
    for obj in inputs {
        let fmt = format
            .or_else(|| Format::from_path(&obj.uri))
            .ok_or_else(|| {
                format!(
                    "cannot tell the format of {}: set input.format (warc, wet, jsonl or parquet)",
                    obj.uri
                )
            })?;
        if splittable(&obj.uri, fmt) && obj.size > partition_bytes {
            let mut start = 0;
            while start < obj.size {
                let end = start + partition_bytes;
                let end = if end >= obj.size { None } else { Some(end) };
                out.push(PartitionSpec {
                    id: out.len(),
                    uri: obj.uri.clone(),
                    format: fmt,
                    start,
                    end,
                    size: obj.size,
                    row_groups: None,
                });
                start = end.unwrap_or(obj.size);
            }
        } else {
            out.push(PartitionSpec {
                id: out.len(),
                uri: obj.uri.clone(),
                format: fmt,
                start: 0,
                end: None,
                size: obj.size,
                row_groups: None,
            });
        }
    }
    Ok(out)
}

/// Splits each Parquet partition larger than `partition_bytes` into ranges of whole row groups
/// of at most `partition_bytes` bytes, asking `row_group_spans(uri)` for the byte spans of the
/// file's row groups (from its footer). A partition's `start..end` is then the byte span of its
/// row groups (for sizes and logs; the reader goes by `row_groups`). A file whose footer cannot
/// be read stays one partition (its reader skips and counts it). Partitions are renumbered.
pub fn split_row_groups(
    parts: Vec<PartitionSpec>,
    partition_bytes: u64,
    mut row_group_spans: impl FnMut(&str) -> Option<Vec<(u64, u64)>>,
) -> Vec<PartitionSpec> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let split = if p.format == Format::Parquet && p.size > partition_bytes {
            row_group_spans(&p.uri).and_then(|spans| {
                let sizes: Vec<u64> = spans.iter().map(|(a, b)| b - a).collect();
                let groups = crate::io::row_groups::group_row_groups(&sizes, partition_bytes);
                (groups.len() > 1).then_some((spans, groups))
            })
        } else {
            None
        };
        match split {
            Some((spans, groups)) => {
                for (a, b) in groups {
                    out.push(PartitionSpec {
                        id: out.len(),
                        start: spans[a].0,
                        end: Some(spans[b - 1].1),
                        row_groups: Some((a, b)),
                        ..p.clone()
                    });
                }
            }
            None => out.push(PartitionSpec { id: out.len(), ..p }),
        }
    }
    out
}

/// The partitions worker `task` of `tasks` owns.
pub fn owned(n: usize, task: usize, tasks: usize) -> impl Iterator<Item = usize> {
    (0..n).filter(move |p| p % tasks.max(1) == task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_large_files_and_numbers_in_order() {
        let inputs = vec![
            InputObject {
                uri: "/d/a.warc.gz".into(),
                size: 600,
            },
            InputObject {
                uri: "/d/b.jsonl.gz".into(),
                size: 600,
            },
            InputObject {
                uri: "/d/c.jsonl".into(),
                size: 250,
            },
        ];
        let p = split(&inputs, None, 256).unwrap();
        let desc: Vec<(usize, &str, u64, Option<u64>)> = p
            .iter()
            .map(|p| (p.id, &p.uri[3..], p.start, p.end))
            .collect();
        assert_eq!(
            desc,
            vec![
                (0, "a.warc.gz", 0, Some(256)),
                (1, "a.warc.gz", 256, Some(512)),
                (2, "a.warc.gz", 512, None),
                (3, "b.jsonl.gz", 0, None),
                (4, "c.jsonl", 0, None),
            ]
        );
        assert_eq!(owned(5, 1, 2).collect::<Vec<_>>(), vec![1, 3]);
        // Parquet files over the budget split by row group; smaller ones and unreadable
        // footers stay whole.
        let pq = |uri: &str, size| InputObject {
            uri: uri.into(),
            size,
        };
        let p = split(
            &[
                pq("/d/a.parquet", 400),
                pq("/d/b.parquet", 100),
                pq("/d/c.parquet", 400),
            ],
            None,
            256,
        )
        .unwrap();
        let spans = vec![(4, 104), (104, 204), (204, 304), (304, 390)];
        let p = split_row_groups(p, 256, |uri| {
            uri.ends_with("a.parquet").then(|| spans.clone())
        });
        let desc: Vec<_> = p
            .iter()
            .map(|p| (p.id, &p.uri[3..], p.start, p.end, p.row_groups))
            .collect();
        assert_eq!(
            desc,
            vec![
                (0, "a.parquet", 4, Some(204), Some((0, 2))),
                (1, "a.parquet", 204, Some(390), Some((2, 4))),
                (2, "b.parquet", 0, None, None),
                (3, "c.parquet", 0, None, None),
            ]
        );
        assert_eq!(p[1].describe(), "/d/a.parquet row groups [2..4)");
        assert!(split(
            &[InputObject {
                uri: "x.bin".into(),
                size: 1
            }],
            None,
            256
        )
        .is_err());
    }
}
