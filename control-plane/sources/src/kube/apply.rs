//! One watcher event into the index: synchronous, so it is tested without a runtime.

use kube::{Resource, runtime::watcher::Event};
use weft_controller_index::{IndexResource, ObjectKey};

/// The objects of one kind received since `Event::Init`, waiting for `Event::InitDone` to
/// replace the kind in the index all at once. One per watcher.
#[derive(Debug)]
pub struct InitBuffer<K> {
    /// `None` outside a (re)list.
    objects: Option<Vec<K>>,
}

impl<K> Default for InitBuffer<K> {
    fn default() -> Self {
        Self { objects: None }
    }
}

impl<K> InitBuffer<K> {
    /// Whether a (re)list is in progress: `Init` was seen and `InitDone` not yet.
    pub fn is_listing(&self) -> bool {
        self.objects.is_some()
    }

    /// How many objects the (re)list in progress has collected.
    pub fn len(&self) -> usize {
        self.objects.as_ref().map_or(0, Vec::len)
    }

    /// Whether no object is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Applies one watcher event to `index`:
///
/// - `Apply(obj)` applies `obj`, `Delete(obj)` deletes its key;
/// - `Init` starts collecting in `buffer`, dropping what an interrupted earlier (re)list had
///   collected (kube starts over with `Init` when a list page fails);
/// - `InitApply(obj)` collects `obj`, without its `managedFields`;
/// - `InitDone` resets the kind in `index` to exactly the collected objects, in one call.
///
/// Returns `Some(n)` when the event completed a (re)list of `n` objects, `None` otherwise.
/// kube never sends `InitApply` or `InitDone` outside a list; should it, an `InitApply` is
/// applied directly and an `InitDone` is ignored, since resetting to nothing would empty the
/// kind.
pub fn apply_event<K, I>(
    index: &mut I,
    buffer: &mut InitBuffer<K>,
    event: Event<K>,
) -> Option<usize>
where
    K: Resource,
    I: IndexResource<K>,
{
    match event {
        Event::Apply(obj) => index.apply(obj),
        Event::Delete(obj) => index.delete(ObjectKey::of(&obj)),
        Event::Init => buffer.objects = Some(Vec::new()),
        Event::InitApply(mut obj) => {
            // The index never reads them, and during a relist of a big cluster they are most
            // of what is held in memory.
            obj.meta_mut().managed_fields = None;
            match &mut buffer.objects {
                Some(objects) => objects.push(obj),
                None => index.apply(obj),
            }
        }
        Event::InitDone => {
            let objects = buffer.objects.take()?;
            let n = objects.len();
            index.reset(objects);
            return Some(n);
        }
    }
    None
}
