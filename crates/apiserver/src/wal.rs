//! Durable storage: a snapshot of every object plus a write-ahead log of the events since.
//!
//! Each log record is `[len: u32 LE][crc32: u32 LE][JSON event]`. A write is acknowledged only
//! after its record is written and `fdatasync`ed; many writers share one sync (group commit).
//! Startup loads the snapshot, replays the log up to the first torn or corrupt record, then
//! writes a new snapshot and starts an empty log. The log is compacted the same way online once
//! it passes a size threshold. resourceVersions are in every record and in the snapshot header,
//! so the counter never goes backwards across restarts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Context, Error, Result};
use serde_json::{Value, json};
use subsea_store::{Event, EventType, Store};

const SNAPSHOT: &str = "snapshot.jsonl";
const LOG: &str = "wal.log";
/// Online compaction threshold.
const COMPACT_BYTES: u64 = 64 << 20;

pub use subsea_store::record::{decode_all, encode};

/// The open log.
pub struct Wal {
    dir: PathBuf,
    file: File,
    size: u64,
    buf: Vec<u8>,
    _lock: File,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The data directory holds every Secret (service-account tokens, the broker's admin token, the
/// PSK): only its owner may enter it or read its files. Created 0700; an existing directory or
/// file open to others is tightened, with a warning naming it. Certificates stay readable.
pub fn secure_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create data directory {}", dir.display()))?;
    tighten(dir, 0o700)?;
    let entries =
        fs::read_dir(dir).with_context(|| format!("failed to read data directory {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file && path.extension().is_none_or(|e| e != "crt") {
            tighten(&path, 0o600)?;
        }
    }
    Ok(())
}

fn tighten(path: &Path, mode: u32) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("failed to read {}", path.display()))?;
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{current:o}"),
            "the data directory holds secrets: restricting it to its owner (mode {mode:o})"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to restrict {} to mode {mode:o}", path.display()))?;
    }
    Ok(())
}

fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

/// Creates `dir` owner-only if missing and takes its lock: one server per data directory.
pub fn lock_dir(dir: &Path) -> Result<File> {
    secure_dir(dir)?;
    let lock = private_file()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .context("failed to open the data directory lock")?;
    if lock.try_lock().is_err() {
        return Err(Error::InUse(dir.to_path_buf()));
    }
    Ok(lock)
}

/// Loads the store from `dir` (creating the directory on first start), compacts, and opens the
/// log for appending.
pub fn open(dir: &Path) -> Result<(Store, Wal)> {
    let lock = lock_dir(dir)?;
    let mut store = Store::new();
    let snap = dir.join(SNAPSHOT);
    if snap.exists() {
        load_snapshot(&snap, &mut store).with_context(|| format!("failed to read {}", snap.display()))?;
    }
    let snapshot_rev = store.rev();
    let log_path = dir.join(LOG);
    if log_path.exists() {
        let mut bytes = Vec::new();
        File::open(&log_path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .context("failed to read wal.log")?;
        let (events, valid) = decode_all(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                dropped_bytes = bytes.len() - valid,
                "ignoring a torn or corrupt tail of wal.log"
            );
        }
        for ev in events.iter().filter(|e| e.rev > snapshot_rev) {
            store.replay(ev);
        }
    }
    let file = private_file()
        .create(true)
        .append(true)
        .open(&log_path)
        .context("failed to open wal.log")?;
    let mut wal = Wal {
        dir: dir.to_path_buf(),
        file,
        size: 0,
        buf: Vec::new(),
        _lock: lock,
    };
    wal.compact(&store)
        .context("failed to compact the log at startup")?;
    Ok((store, wal))
}

fn load_snapshot(path: &Path, store: &mut Store) -> Result<()> {
    let reader = BufReader::new(File::open(path)?);
    let mut lines = reader.lines();
    let header: Value = serde_json::from_str(&lines.next().context("empty snapshot")??)?;
    let rev = header["rev"].as_u64().context("snapshot header has no rev")?;
    let mut complete = false;
    for line in lines {
        let v: Value = serde_json::from_str(&line?)?;
        if v["end"].as_bool() == Some(true) {
            complete = true;
            break;
        }
        let ty = v["ty"].as_str().context("snapshot line has no type")?.to_string();
        let obj = Arc::new(v["obj"].clone());
        let obj_rev = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok());
        store.replay(&Event {
            ty,
            kind: EventType::Added,
            object: obj,
            prev: None,
            rev: obj_rev.unwrap_or(0),
        });
    }
    if !complete {
        return Err(Error::Corrupt("snapshot is truncated (no end marker)".into()));
    }
    store.bump_rev_to(rev);
    Ok(())
}

impl Wal {
    /// Appends events and syncs them to disk.
    pub fn append(&mut self, events: &[Event]) -> io::Result<()> {
        self.buf.clear();
        for ev in events {
            encode(ev, &mut self.buf);
        }
        self.file.write_all(&self.buf)?;
        self.file.sync_data()?;
        self.size += self.buf.len() as u64;
        Ok(())
    }

    /// Whether the log has grown enough to be folded into a new snapshot.
    pub fn needs_compaction(&self) -> bool {
        self.size >= COMPACT_BYTES
    }

    /// Writes a snapshot of `store` and empties the log. Every record already in the log must be
    /// reflected in `store`.
    pub fn compact(&mut self, store: &Store) -> io::Result<()> {
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        {
            let mut w = BufWriter::new(
                private_file()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)?,
            );
            writeln!(w, "{}", json!({"rev": store.rev(), "format": 1}))?;
            for (ty, raw) in store.iter_raw() {
                writeln!(w, "{{\"ty\":{},\"obj\":{raw}}}", Value::String(ty.to_string()))?;
            }
            writeln!(w, "{}", json!({"end": true}))?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(SNAPSHOT))?;
        sync_dir(&self.dir)?;
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(rev: u64, name: &str, kind: EventType) -> Event {
        Event {
            ty: "/configmaps".into(),
            kind,
            object: Arc::new(
                json!({"metadata": {"name": name, "namespace": "d", "resourceVersion": rev.to_string()}}),
            ),
            prev: None,
            rev,
        }
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_cut() {
        let mut buf = Vec::new();
        encode(&ev(1, "a", EventType::Added), &mut buf);
        encode(&ev(2, "a", EventType::Deleted), &mut buf);
        let full = buf.len();
        encode(&ev(3, "b", EventType::Added), &mut buf);
        let (events, valid) = decode_all(&buf[..buf.len() - 3]);
        assert_eq!(events.len(), 2);
        assert_eq!(valid, full);
        assert_eq!(events[1].kind, EventType::Deleted);
        let mut corrupt = buf.clone();
        corrupt[full + 10] ^= 0xff;
        assert_eq!(decode_all(&corrupt).0.len(), 2);
    }

    #[test]
    fn random_bytes_decode_without_panicking() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut good = Vec::new();
        encode(&ev(1, "a", EventType::Added), &mut good);
        for round in 0..2000 {
            let mut bytes = if round % 2 == 0 { good.clone() } else { Vec::new() };
            for _ in 0..(round % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = (x & 0xff) as u8;
                if bytes.is_empty() || x % 3 == 0 {
                    bytes.push(b);
                } else {
                    let i = (x as usize >> 8) % bytes.len();
                    bytes[i] = b;
                }
            }
            let (events, valid) = decode_all(&bytes);
            assert!(valid <= bytes.len());
            assert!(events.len() <= 1);
        }
    }

    #[test]
    fn reopen_keeps_objects_and_revision() {
        let dir = std::env::temp_dir().join(format!("subsea-wal-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        {
            let (store, mut wal) = open(&dir).expect("open");
            assert_eq!(store.rev(), 0);
            wal.append(&[
                ev(1, "a", EventType::Added),
                ev(2, "b", EventType::Added),
                ev(3, "a", EventType::Deleted),
            ])
            .expect("append");
        }
        let (store, mut wal) = open(&dir).expect("reopen");
        assert_eq!(store.rev(), 3, "the deletion's resourceVersion survives");
        assert!(store.get("/configmaps", "d", "a").is_none());
        assert!(store.get("/configmaps", "d", "b").is_some());
        wal.append(&[ev(4, "c", EventType::Added)]).expect("append");
        drop(wal);
        let (store, _wal) = open(&dir).expect("reopen twice");
        assert_eq!(store.rev(), 4);
        assert!(store.get("/configmaps", "d", "c").is_some());
        let _ = fs::remove_dir_all(&dir);
    }
}
