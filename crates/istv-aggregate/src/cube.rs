//! The cube: counts of events at the finest grain stored, its key and how a
//! batch of events changes it.

use crate::event::{Event, LocationStatus, RecordKey};
use crate::rollup::{KeyView, RollupDeltas, RollupSet};
use chrono::NaiveDate;
use h3o::{CellIndex, Resolution};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

/// An H3 resolution that the `cell` dimension can be asked for: 7 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellResolution(u8);

impl CellResolution {
    /// The coarsest queryable resolution.
    pub const MIN: u8 = 7;
    /// The finest queryable (and stored) resolution.
    pub const MAX: u8 = 10;
    /// The resolution used when a query names none.
    pub const DEFAULT: CellResolution = CellResolution(9);
    /// Every queryable resolution, coarsest first.
    pub const ALL: [CellResolution; 4] = [
        CellResolution(7),
        CellResolution(8),
        CellResolution(9),
        CellResolution(10),
    ];

    /// The resolution `r`, when 7 <= r <= 10.
    pub fn new(r: u8) -> Option<CellResolution> {
        (Self::MIN..=Self::MAX)
            .contains(&r)
            .then_some(CellResolution(r))
    }

    /// The number, 7 to 10.
    pub const fn get(self) -> u8 {
        self.0
    }

    fn h3(self) -> Resolution {
        Resolution::try_from(self.0).expect("7..=10 are H3 resolutions")
    }

    fn index(self) -> usize {
        usize::from(self.0 - Self::MIN)
    }
}

/// The key of one cube cell: every dimension an event can be counted by, at
/// its finest grain. Week, month and weekday derive from `day`; the cell at
/// each queryable resolution is kept because a parent is not computable in
/// SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CubeKey {
    /// London date of the assault.
    pub day: NaiveDate,
    /// London hour of the assault, when known.
    pub hour: Option<u8>,
    /// Primary means of assault.
    pub method: AssaultMethod,
    /// Kind of place.
    pub location_type: LocationType,
    /// Age band.
    pub age_band: AgeBand,
    /// Sex.
    pub sex: Sex,
    /// ODS site code.
    pub site: String,
    /// Whether the incident was placed in the area.
    pub location_status: LocationStatus,
    /// The event's cell at resolutions 7, 8, 9 and 10 (index 0 is 7); `None`
    /// where the stored cell is coarser than that resolution.
    pub cells: [Option<CellIndex>; 4],
    /// ONS borough code.
    pub borough: Option<Arc<str>>,
    /// ONS ward code.
    pub ward: Option<Arc<str>>,
    /// ONS LSOA code.
    pub lsoa: Option<Arc<str>>,
}

impl CubeKey {
    /// The key an event counts under.
    pub fn of(event: &Event) -> CubeKey {
        let cells = CubeKey::cells_of(event);
        CubeKey {
            day: event.assault_date,
            hour: event.assault_hour,
            method: event.method,
            location_type: event.location_type,
            age_band: event.age_band,
            sex: event.sex,
            site: event.site_code.clone(),
            location_status: event.location_status(),
            cells,
            borough: event.borough.clone(),
            ward: event.ward.clone(),
            lsoa: event.lsoa.clone(),
        }
    }

    /// The cells of an event's key: its cell at resolutions 7, 8, 9 and 10
    /// (index 0 is 7), `None` where its cell is coarser.
    pub fn cells_of(event: &Event) -> [Option<CellIndex>; 4] {
        let mut cells = [None; 4];
        if let Some(cell) = event.cell {
            for r in CellResolution::ALL {
                // `parent` gives None when the cell is coarser than `r`, and
                // the cell itself when it is at `r`.
                cells[r.index()] = cell.parent(r.h3());
            }
        }
        cells
    }

    /// The cell at resolution `r`, when the stored cell is that fine.
    pub fn cell(&self, r: CellResolution) -> Option<CellIndex> {
        self.cells[r.index()]
    }

    /// The stored value of one column.
    pub fn value(&self, column: Column) -> Value {
        fn text(v: &Option<Arc<str>>) -> Value {
            Value::Text(v.as_deref().unwrap_or_default().to_owned())
        }
        match column {
            Column::Day => Value::Text(self.day.format("%Y-%m-%d").to_string()),
            Column::Hour => Value::Int(self.hour.map_or(-1, i64::from)),
            Column::Method => Value::Text(self.method.as_str().to_owned()),
            Column::LocationType => Value::Text(self.location_type.as_str().to_owned()),
            Column::AgeBand => Value::Text(self.age_band.as_str().to_owned()),
            Column::Sex => Value::Text(self.sex.as_str().to_owned()),
            Column::Site => Value::Text(self.site.clone()),
            Column::LocationStatus => Value::Text(self.location_status.as_str().to_owned()),
            Column::Cell(r) => Value::Int(cell_to_int(self.cell(r))),
            Column::Borough => text(&self.borough),
            Column::Ward => text(&self.ward),
            Column::Lsoa => text(&self.lsoa),
        }
    }
}

/// The stored integer of an optional cell: the H3 index (its top bit is
/// always 0, so it fits an i64), or 0 (never a valid index) for none.
pub fn cell_to_int(cell: Option<CellIndex>) -> i64 {
    cell.map_or(0, |c| u64::from(c) as i64)
}

/// The cell of a stored integer; 0 or an invalid index is none.
pub fn cell_from_int(v: i64) -> Option<CellIndex> {
    if v == 0 {
        None
    } else {
        CellIndex::try_from(v as u64).ok()
    }
}

/// A column of the stored cube. Unknown values are stored as a sentinel
/// rather than NULL, so that a unique constraint over the key columns holds
/// (SQL treats NULLs as distinct): `-1` for an unknown hour, `0` for no cell,
/// `''` for no area code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// `day`, text `YYYY-MM-DD`.
    Day,
    /// `hour`, integer 0-23 or -1.
    Hour,
    /// `assault_method`, text.
    Method,
    /// `location_type`, text.
    LocationType,
    /// `age_band`, text label.
    AgeBand,
    /// `sex`, text.
    Sex,
    /// `site_code`, text.
    Site,
    /// `location_status`, text.
    LocationStatus,
    /// `cell7` to `cell10`, integer H3 index or 0.
    Cell(CellResolution),
    /// `borough`, text ONS code or ''.
    Borough,
    /// `ward`, text ONS code or ''.
    Ward,
    /// `lsoa`, text ONS code or ''.
    Lsoa,
}

impl Column {
    /// Every key column, in the stored order.
    pub const ALL: [Column; 15] = [
        Column::Day,
        Column::Hour,
        Column::Method,
        Column::LocationType,
        Column::AgeBand,
        Column::Sex,
        Column::Site,
        Column::LocationStatus,
        Column::Cell(CellResolution(7)),
        Column::Cell(CellResolution(8)),
        Column::Cell(CellResolution(9)),
        Column::Cell(CellResolution(10)),
        Column::Borough,
        Column::Ward,
        Column::Lsoa,
    ];

    /// The SQL column name.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Day => "day",
            Column::Hour => "hour",
            Column::Method => "assault_method",
            Column::LocationType => "location_type",
            Column::AgeBand => "age_band",
            Column::Sex => "sex",
            Column::Site => "site_code",
            Column::LocationStatus => "location_status",
            Column::Cell(CellResolution(7)) => "cell7",
            Column::Cell(CellResolution(8)) => "cell8",
            Column::Cell(CellResolution(9)) => "cell9",
            Column::Cell(_) => "cell10",
            Column::Borough => "borough",
            Column::Ward => "ward",
            Column::Lsoa => "lsoa",
        }
    }

    /// True for integer columns, false for text.
    pub const fn is_int(self) -> bool {
        matches!(self, Column::Hour | Column::Cell(_))
    }

    /// The values of a text column with a fixed set of them, by code: a
    /// roll-up table stores such a column as its value's position in the
    /// enumeration's `ALL` (a byte on SQLite's disk, an integer comparison
    /// in its b-trees, where the text's were the largest item in a
    /// profile of an upload). `None` for every other column. A store's
    /// tables record the codes' version in their definition: these lists
    /// only ever grow at the end.
    pub fn codes(self) -> Option<&'static [&'static str]> {
        fn texts<T: Copy>(all: &[T], text: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| text(*v)).collect()
        }
        static METHOD: LazyLock<Vec<&str>> =
            LazyLock::new(|| texts(AssaultMethod::ALL, AssaultMethod::as_str));
        static PLACE: LazyLock<Vec<&str>> =
            LazyLock::new(|| texts(LocationType::ALL, LocationType::as_str));
        static AGE: LazyLock<Vec<&str>> = LazyLock::new(|| texts(&AgeBand::ALL, AgeBand::as_str));
        static SEX: LazyLock<Vec<&str>> = LazyLock::new(|| texts(Sex::ALL, Sex::as_str));
        static STATUS: LazyLock<Vec<&str>> =
            LazyLock::new(|| texts(&LocationStatus::ALL, LocationStatus::as_str));
        let codes: &LazyLock<Vec<&str>> = match self {
            Column::Method => &METHOD,
            Column::LocationType => &PLACE,
            Column::AgeBand => &AGE,
            Column::Sex => &SEX,
            Column::LocationStatus => &STATUS,
            _ => return None,
        };
        Some(codes.as_slice())
    }

    /// The code of a value of a column with [`Column::codes`].
    pub fn code_of(self, text: &str) -> Option<i64> {
        let at = self.codes()?.iter().position(|t| *t == text)?;
        Some(at as i64)
    }
}

/// A stored column value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// A text column's value.
    Text(String),
    /// An integer column's value.
    Int(i64),
}

/// How many new records, duplicates and corrections a batch held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records not seen before: +1 on their key.
    pub accepted: u64,
    /// Re-sent records with unchanged content: no change.
    pub duplicates: u64,
    /// Re-sent records with changed content: -1 on the old key, +1 on the
    /// new, record replaced.
    pub corrections: u64,
    /// Records of the batch whose current version (stored before the batch,
    /// or written earlier in the batch) was written by the same upload: a
    /// record id repeated within one file. Each is also counted as a
    /// duplicate or a correction; this count overlaps the other three.
    pub replaced_in_upload: u64,
}

impl BatchOutcome {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: BatchOutcome) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.corrections += other.corrections;
        self.replaced_in_upload += other.replaced_in_upload;
    }

    /// All events of the batch (`replaced_in_upload` overlaps the other
    /// counts, so it is not added).
    pub fn total(&self) -> u64 {
        self.accepted + self.duplicates + self.corrections
    }
}

/// What a set of records adds to an aggregate: how many there are and the
/// sum of their record keys (for the cell key method). Both add, so every
/// roll-up of the cube holds them, and a change is a tally too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Tally {
    /// Number of records.
    pub count: i64,
    /// Sum of their [`Event::disclosure_key`]s (not reduced modulo
    /// [`crate::RECORD_KEYS`], so that it stays additive).
    pub keysum: i64,
}

impl Tally {
    /// One record.
    pub fn of(event: &Event) -> Tally {
        Tally {
            count: 1,
            keysum: i64::from(event.disclosure_key),
        }
    }

    /// True when it changes nothing.
    pub fn is_zero(&self) -> bool {
        self.count == 0 && self.keysum == 0
    }

    /// The cell key of the records: their keys' sum modulo
    /// [`crate::RECORD_KEYS`].
    pub fn cell_key(&self) -> u16 {
        self.keysum.rem_euclid(i64::from(crate::RECORD_KEYS)) as u16
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.count += o.count;
        self.keysum += o.keysum;
    }
}

impl std::ops::SubAssign for Tally {
    fn sub_assign(&mut self, o: Tally) {
        self.count -= o.count;
        self.keysum -= o.keysum;
    }
}

impl std::ops::Neg for Tally {
    type Output = Tally;
    fn neg(self) -> Tally {
        Tally {
            count: -self.count,
            keysum: -self.keysum,
        }
    }
}

/// What a batch does to a store: the records to write and the net change of
/// each cube key.
#[derive(Debug, Clone, Default)]
pub struct BatchPlan<'a> {
    /// The counts.
    pub outcome: BatchOutcome,
    /// The final state of every record the batch sends (added, changed or
    /// re-sent unchanged, so that it is stamped with the sending upload), one
    /// per record key, in first-seen order.
    pub upserts: Vec<&'a Event>,
    /// Net change per cube key, without zeros, in key order.
    pub deltas: Vec<(CubeKey, Tally)>,
}

/// Plans a batch against the records already stored.
///
/// `existing` holds the stored record for (at least) every key of the batch
/// that is stored. Events are taken in order, so a record repeated within a
/// batch is a duplicate or a correction of its earlier self, exactly as if
/// the events came one per batch. No stored record counts as written by the
/// batch's upload (see [`plan_batch_in_upload`]).
pub fn plan_batch<'a>(existing: &HashMap<RecordKey, Event>, events: &'a [Event]) -> BatchPlan<'a> {
    plan_batch_in_upload(existing, &HashSet::new(), events)
}

/// [`plan_batch`] for a batch of an upload: `same_upload` holds the keys of
/// the stored records (in `existing`) last written by that same upload, so
/// that [`BatchOutcome::replaced_in_upload`] counts the batch's events whose
/// current version is one of those or was written earlier in the batch.
pub fn plan_batch_in_upload<'a>(
    existing: &HashMap<RecordKey, Event>,
    same_upload: &HashSet<RecordKey>,
    events: impl IntoIterator<Item = &'a Event, IntoIter: ExactSizeIterator>,
) -> BatchPlan<'a> {
    let events = events.into_iter();
    // Keys come from uploads: a seeded hash, not a fixed one.
    let hasher = foldhash::fast::RandomState::default;
    let mut outcome = BatchOutcome::default();
    // Index into `upserts` of the current state of each key the batch touched.
    let mut touched: HashMap<(&str, &str), usize, _> =
        HashMap::with_capacity_and_hasher(events.len(), hasher());
    let mut upserts: Vec<&Event> = Vec::with_capacity(events.len());
    let mut deltas: HashMap<CubeKey, Tally, _> =
        HashMap::with_capacity_and_hasher(events.len(), hasher());
    // A batch of new records meets an empty `existing`: no owned key needed.
    let stored = |e: &Event| (!existing.is_empty()).then(|| existing.get(&e.record_key()))?;
    let same = |e: &Event| !same_upload.is_empty() && same_upload.contains(&e.record_key());
    for event in events {
        let key = (event.site_code.as_str(), event.record_id.as_str());
        let written_here = touched.get(&key).copied();
        let current = match written_here {
            Some(i) => Some(upserts[i]),
            None => stored(event),
        };
        if current.is_some() && (written_here.is_some() || same(event)) {
            outcome.replaced_in_upload += 1;
        }
        match current {
            // Still written, so the stored record names the upload that last
            // sent it and a later repeat in the same upload is recognised.
            Some(old) if old.content_hash == event.content_hash => outcome.duplicates += 1,
            Some(old) => {
                outcome.corrections += 1;
                *deltas.entry(CubeKey::of(old)).or_default() -= Tally::of(old);
                *deltas.entry(CubeKey::of(event)).or_default() += Tally::of(event);
            }
            None => {
                outcome.accepted += 1;
                *deltas.entry(CubeKey::of(event)).or_default() += Tally::of(event);
            }
        }
        match written_here {
            Some(i) => upserts[i] = event,
            None => {
                touched.insert(key, upserts.len());
                upserts.push(event);
            }
        }
    }
    let mut deltas: Vec<(CubeKey, Tally)> =
        deltas.into_iter().filter(|(_, d)| !d.is_zero()).collect();
    deltas.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    BatchPlan {
        outcome,
        upserts,
        deltas,
    }
}

/// Tallies per cube key, kept in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cube {
    counts: HashMap<CubeKey, Tally>,
}

impl Cube {
    /// An empty cube.
    pub fn new() -> Cube {
        Cube::default()
    }

    /// The cube of a set of records, counted from scratch.
    pub fn recount<'a>(events: impl IntoIterator<Item = &'a Event>) -> Cube {
        let mut cube = Cube::new();
        for e in events {
            cube.add(CubeKey::of(e), Tally::of(e));
        }
        cube
    }

    /// Adds `delta` to a key; a key whose tally reaches zero is removed.
    pub fn add(&mut self, key: CubeKey, delta: Tally) {
        match self.counts.entry(key) {
            Entry::Occupied(mut o) => {
                *o.get_mut() += delta;
                if o.get().is_zero() {
                    o.remove();
                }
            }
            Entry::Vacant(v) => {
                if !delta.is_zero() {
                    v.insert(delta);
                }
            }
        }
    }

    /// The count of a key (0 when absent).
    pub fn get(&self, key: &CubeKey) -> i64 {
        self.tally(key).count
    }

    /// The tally of a key (zero when absent).
    pub fn tally(&self, key: &CubeKey) -> Tally {
        self.counts.get(key).copied().unwrap_or_default()
    }

    /// Every key with a non-zero tally.
    pub fn iter(&self) -> impl Iterator<Item = (&CubeKey, Tally)> {
        self.counts.iter().map(|(k, c)| (k, *c))
    }

    /// Number of keys with a non-zero count.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when no key has a count.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Sum of all counts.
    pub fn total(&self) -> i64 {
        self.counts.values().map(|t| t.count).sum()
    }
}

/// Records, their cube and its roll-ups, kept in memory: the reference
/// model of a store.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    records: HashMap<RecordKey, Event>,
    /// The upload that last wrote each record.
    writers: HashMap<RecordKey, String>,
    cube: Cube,
    rollups: RollupSet,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Applies a batch as a store does: plan it, then write records and
    /// deltas. Every batch given to `apply` belongs to one and the same
    /// upload (use [`Ledger::apply_in_upload`] to tell uploads apart).
    pub fn apply(&mut self, events: &[Event]) -> BatchOutcome {
        self.apply_in_upload("", events)
    }

    /// Applies a batch of the upload `upload`, as a store does.
    pub fn apply_in_upload(&mut self, upload: &str, events: &[Event]) -> BatchOutcome {
        let same_upload: HashSet<RecordKey> = events
            .iter()
            .map(Event::record_key)
            .filter(|k| self.writers.get(k).is_some_and(|w| w == upload))
            .collect();
        let plan = plan_batch_in_upload(&self.records, &same_upload, events);
        for e in plan.upserts {
            self.writers.insert(e.record_key(), upload.to_owned());
            self.records.insert(e.record_key(), e.clone());
        }
        let mut rollups = RollupDeltas::new();
        for (k, d) in &plan.deltas {
            rollups.add(&KeyView::of_key(k), *d);
        }
        self.rollups.apply(rollups);
        for (k, d) in plan.deltas {
            self.cube.add(k, d);
        }
        plan.outcome
    }

    /// The stored records.
    pub fn records(&self) -> impl Iterator<Item = &Event> {
        self.records.values()
    }

    /// The incrementally maintained cube.
    pub fn cube(&self) -> &Cube {
        &self.cube
    }

    /// The incrementally maintained roll-ups.
    pub fn rollups(&self) -> &RollupSet {
        &self.rollups
    }
}
