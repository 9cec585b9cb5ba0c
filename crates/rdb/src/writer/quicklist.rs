//! Quicklist node planning: how Redis 7.0 would split a list into quicklist nodes, so the
//! writer emits the same nodes (`quicklistPushTail`, `_quicklistNodeAllowInsert` of
//! `quicklist.c`; the rule is in the parent module's documentation).

use super::listpack_builder::ListpackBuilder;

/// Elements of 1 GiB or more live in plain quicklist nodes (`packed_threshold`).
const PACKED_THRESHOLD: usize = 1 << 30;
/// `SIZE_SAFETY_LIMIT` of quicklist.c.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// `SIZE_ESTIMATE_OVERHEAD` of quicklist.c.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// quicklist.c `optimization_level`: node size classes for fill -1 .. -5.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// One quicklist node of the plan: how many elements, plain or packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NodePlan {
    pub(super) count: usize,
    pub(super) plain: bool,
}

/// Split a list into quicklist nodes exactly as successive `quicklistPushTail` calls would.
pub(super) fn plan_quicklist<'a>(
    items: impl Iterator<Item = &'a [u8]>,
    fill: i64,
) -> Vec<NodePlan> {
    // quicklistSetFill clamps to [-5, 32767].
    let fill = fill.clamp(-5, 32767);
    let mut nodes: Vec<NodePlan> = Vec::new();
    let mut tail_sz = 0usize; // lpBytes of the tail node (when packed)
    for ele in items {
        let sz = ele.len();
        if sz >= PACKED_THRESHOLD {
            nodes.push(NodePlan {
                count: 1,
                plain: true,
            });
            continue;
        }
        let allow = match nodes.last() {
            Some(n) if !n.plain => {
                let new_sz = tail_sz + sz + SIZE_ESTIMATE_OVERHEAD;
                let class = if fill < 0 {
                    OPTIMIZATION_LEVEL.get((-fill - 1) as usize)
                } else {
                    None
                };
                if class.is_some_and(|&limit| new_sz <= limit) {
                    true
                } else if new_sz > SIZE_SAFETY_LIMIT {
                    false
                } else {
                    (n.count as i64) < fill
                }
            }
            _ => false,
        };
        let entry = ListpackBuilder::entry_size(ele);
        match nodes.last_mut() {
            Some(n) if allow => {
                n.count += 1;
                tail_sz += entry;
            }
            _ => {
                nodes.push(NodePlan {
                    count: 1,
                    plain: false,
                });
                tail_sz = 6 + 1 + entry;
            }
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quicklist_plan_splits_like_redis() {
        // 100-byte elements: entry = 2 + 100 + 1 = 103 bytes. The first node starts at
        // 7 + 103 = 110 and takes elements while sz + 100 + 8 <= 8192.
        let ele = vec![b'x'; 100];
        let items: Vec<&[u8]> = (0..200).map(|_| ele.as_slice()).collect();
        let plan = plan_quicklist(items.iter().copied(), -2);
        let per_node = (8192 - 108 - 110) / 103 + 2;
        assert_eq!(plan[0].count, per_node);
        assert_eq!(plan.iter().map(|n| n.count).sum::<usize>(), 200);
        // Positive fill: count limit.
        let plan = plan_quicklist(items.iter().copied(), 3);
        assert!(plan.iter().take(66).all(|n| n.count == 3));
        // A huge element crossing 8 KiB stays packed in its own node.
        let big = vec![b'y'; 10_000];
        let plan = plan_quicklist([b"a".as_slice(), &big, b"b"].into_iter(), -2);
        assert_eq!(
            plan,
            vec![
                NodePlan {
                    count: 1,
                    plain: false
                };
                3
            ]
        );
    }
}
