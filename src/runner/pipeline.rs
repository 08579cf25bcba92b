//! Pipelined creations (docs/design.md §5): a link starts snapshotting what the first page of the
//! inventory selects while later pages are still read. The reader shows the inventory to a
//! [`Dispatcher`] after each page; it hands on, once each, the volumes whose selection no later
//! read can change, with the part of the inventory their snapshots need (tags, and for a
//! crash-consistent set every volume attached to the instance).

use std::collections::{BTreeMap, BTreeSet};

use futures::channel::mpsc::UnboundedSender;

use crate::core::select::{self, Exclude, Inventory, Select, Selected};
use crate::core::tags::{TagSet, is_ebssnap_key};

/// Volumes ready to snapshot, each with the tags of its snapshot. Compact: batches wait in the
/// channel while creations are paced, so they hold no copy of the inventory beyond what
/// crash-consistent sets need.
pub(super) struct Batch {
    pub items: Vec<(Selected, TagSet)>,
    /// Crash-consistent sets only: the batch's instances and every volume attached to them,
    /// with only their `ebssnap:` tags (a set needs attachments, devices and which volumes carry
    /// such tags); empty otherwise.
    pub sets: Inventory,
}

/// The tags of a volume's snapshot, from the inventory it was selected in.
pub(super) type Tagger<'a> = dyn Fn(&Selected, &Inventory) -> TagSet + Send + Sync + 'a;

pub(super) struct Dispatcher<'a> {
    sel: &'a Select,
    excl: Exclude,
    crash_consistent: bool,
    tagger: &'a Tagger<'a>,
    /// A continuing link's carried volumes: nothing else is handed on.
    only: Option<BTreeSet<String>>,
    dispatched: BTreeSet<String>,
    tx: UnboundedSender<Batch>,
}

impl<'a> Dispatcher<'a> {
    pub fn new(
        sel: &'a Select,
        excl: Exclude,
        crash_consistent: bool,
        tagger: &'a Tagger<'a>,
        tx: UnboundedSender<Batch>,
    ) -> Self {
        Dispatcher {
            sel,
            excl,
            crash_consistent,
            tagger,
            only: None,
            dispatched: BTreeSet::new(),
            tx,
        }
    }

    /// Hands on only these volumes (a continuing link's carried list), those still selected.
    pub fn only(mut self, volumes: &[String]) -> Self {
        self.only = Some(volumes.iter().cloned().collect());
        self
    }

    /// How many volumes were handed on so far.
    pub fn dispatched(&self) -> usize {
        self.dispatched.len()
    }

    /// Hands on what `inv` newly settles (everything left, once `complete`). False once nobody
    /// takes batches any more (the run stopped): the reading can end.
    pub fn on_page(&mut self, inv: &Inventory, complete: bool) -> bool {
        let mut ready = ready(
            self.sel,
            &self.excl,
            self.crash_consistent,
            inv,
            complete,
            &self.dispatched,
        );
        if let Some(only) = &self.only {
            ready.retain(|s| only.contains(&s.volume_id));
        }
        if ready.is_empty() {
            return !self.tx.is_closed();
        }
        self.dispatched
            .extend(ready.iter().map(|s| s.volume_id.clone()));
        let sets = if self.crash_consistent {
            set_fragment(inv, &ready)
        } else {
            Inventory::default()
        };
        let items = ready
            .into_iter()
            .map(|s| {
                let tags = (self.tagger)(&s, inv);
                (s, tags)
            })
            .collect();
        let batch = Batch { items, sets };
        self.tx.unbounded_send(batch).is_ok()
    }
}

/// The selected volumes not yet handed on that can be snapshotted now. Before the inventory is
/// complete: the settled selection ([`select::select_settled`]); with crash-consistent sets, an
/// instance's volumes only once the instance and every volume attached to it are described and
/// no `instance_filters` call is still to come (a set is one call for all its volumes, so it must
/// not start before its membership is final).
fn ready(
    sel: &Select,
    excl: &Exclude,
    crash_consistent: bool,
    inv: &Inventory,
    complete: bool,
    dispatched: &BTreeSet<String>,
) -> Vec<Selected> {
    let candidates = if complete {
        select::select(sel, excl, inv)
    } else {
        select::select_settled(sel, excl, inv)
    };
    let fresh = candidates
        .into_iter()
        .filter(|s| !dispatched.contains(&s.volume_id));
    if complete || !crash_consistent {
        return fresh.collect();
    }
    let mut out = Vec::new();
    let mut by_instance: BTreeMap<String, Vec<Selected>> = BTreeMap::new();
    for s in fresh {
        match &s.instance_id {
            Some(i) => by_instance.entry(i.clone()).or_default().push(s),
            None => out.push(s),
        }
    }
    let filters_pending = sel.instance_filters().is_some();
    for (instance, volumes) in by_instance {
        let whole = inv.instances.get(&instance).is_some_and(|i| {
            i.volumes.iter().all(|v| inv.volumes.contains_key(v)) && !filters_pending
        });
        if whole {
            out.extend(volumes);
        }
    }
    out
}

/// What crash-consistent sets of `ready` need of `inv`: their instances and every described
/// volume attached to those instances, keeping only `ebssnap:` tags.
fn set_fragment(inv: &Inventory, ready: &[Selected]) -> Inventory {
    let mut out = Inventory::default();
    let mut keep = |v: &select::Volume| {
        let mut v = v.clone();
        v.tags.retain(|k, _| is_ebssnap_key(k));
        out.volumes.insert(v.id.clone(), v);
    };
    let mut instances = Vec::new();
    for s in ready {
        if let Some(v) = inv.volumes.get(&s.volume_id) {
            keep(v);
        }
        let Some(i) = s.instance_id.as_ref().and_then(|i| inv.instances.get(i)) else {
            continue;
        };
        for v in i.volumes.iter().filter_map(|v| inv.volumes.get(v)) {
            keep(v);
        }
        instances.push(i);
    }
    for i in instances {
        let mut i = i.clone();
        i.tags.clear();
        out.instances.insert(i.id.clone(), i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::select::{Instance, Volume};

    fn instance(id: &str, name: &str, volumes: &[&str]) -> Instance {
        Instance {
            id: id.into(),
            state: "running".into(),
            tags: BTreeMap::from([("Name".to_string(), name.to_string())]),
            root_device: Some("/dev/xvda".into()),
            volumes: volumes.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn volume(id: &str, on: &str, dev: &str) -> Volume {
        Volume {
            id: id.into(),
            state: "in-use".into(),
            attachment: Some((on.into(), dev.into())),
            ..Default::default()
        }
    }

    fn web() -> Select {
        Select {
            instance_names: Some(vec!["web-*".into()]),
            ..Default::default()
        }
    }

    fn ids(b: &Batch) -> Vec<&str> {
        b.items.iter().map(|(s, _)| s.volume_id.as_str()).collect()
    }

    fn no_tags(_: &Selected, _: &Inventory) -> TagSet {
        TagSet::default()
    }

    #[test]
    fn a_page_hands_on_what_it_settles_once_and_the_end_hands_on_the_rest() {
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let sel = web();
        let mut d = Dispatcher::new(&sel, Exclude::default(), false, &no_tags, tx);
        let mut inv = Inventory::default();
        inv.instances
            .insert("i-1".into(), instance("i-1", "web-1", &["vol-1", "vol-2"]));
        inv.volumes
            .insert("vol-1".into(), volume("vol-1", "i-1", "/dev/xvda"));
        // vol-2 is not described yet; vol-9 sits on an instance not described yet.
        inv.volumes
            .insert("vol-9".into(), volume("vol-9", "i-9", "/dev/sdf"));
        assert!(d.on_page(&inv, false));
        let b = rx.try_recv().unwrap();
        assert_eq!(ids(&b), ["vol-1"]);
        assert!(b.sets.instances.is_empty(), "no set, no inventory carried");
        // The same page again hands on nothing new.
        assert!(d.on_page(&inv, false));
        assert!(rx.try_recv().is_err());
        inv.volumes
            .insert("vol-2".into(), volume("vol-2", "i-1", "/dev/sdf"));
        inv.instances
            .insert("i-9".into(), instance("i-9", "db-9", &["vol-9"]));
        assert!(d.on_page(&inv, true));
        // vol-9's instance is not a web instance: never selected.
        assert_eq!(ids(&rx.try_recv().unwrap()), ["vol-2"]);
        drop(rx);
        inv.volumes
            .insert("vol-3".into(), volume("vol-3", "i-1", "/dev/sdg"));
        assert!(!d.on_page(&inv, true), "a closed run stops the reading");
    }

    #[test]
    fn a_crash_consistent_set_waits_for_every_attached_volume_and_the_filters() {
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let sel = web();
        let mut d = Dispatcher::new(&sel, Exclude::default(), true, &no_tags, tx);
        let mut inv = Inventory::default();
        inv.instances
            .insert("i-1".into(), instance("i-1", "web-1", &["vol-1", "vol-2"]));
        inv.volumes
            .insert("vol-1".into(), volume("vol-1", "i-1", "/dev/xvda"));
        assert!(d.on_page(&inv, false));
        assert!(
            rx.try_recv().is_err(),
            "vol-2 is attached but not described"
        );
        inv.volumes
            .insert("vol-2".into(), volume("vol-2", "i-1", "/dev/sdf"));
        assert!(d.on_page(&inv, false));
        let b = rx.try_recv().unwrap();
        assert_eq!(ids(&b), ["vol-1", "vol-2"]);
        assert_eq!(b.sets.volumes.len(), 2);
        assert!(
            b.sets.instances["i-1"].tags.is_empty(),
            "a set needs no tags"
        );

        let filtered = Select {
            instance_filters: Some(BTreeMap::from([(
                "tag:Name".to_string(),
                vec!["web-1".to_string()],
            )])),
            ..web()
        };
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let mut d = Dispatcher::new(&filtered, Exclude::default(), true, &no_tags, tx);
        assert!(d.on_page(&inv, false));
        assert!(
            rx.try_recv().is_err(),
            "a filter call may still add volumes"
        );
        assert!(d.on_page(&inv, true));
        assert_eq!(rx.try_recv().unwrap().items.len(), 2);
    }
}
