//! A batch's content: which certificates it takes (selection from the log), what its files contain
//! (rendering, deterministic), and how a file reaches the disk. What its stream says so far is
//! `domain::batch::BatchState`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::WorkerError;
use crate::domain::PortfolioEvent;
use crate::domain::batch::{BatchCreated, BatchItem};
use crate::domain::ids::CertificateId;
use crate::domain::portfolio::{CertificateApproved, CertificateRevoked};
use crate::export::{
    ExportCertificate, ExportError, ExportFile, ExportSettings, MANIFEST_FILE_NAME, Manifest,
    ManifestFile, WithheldCertificate, batch_counts, personal_data_erased, render_batch,
};
use crate::store::{Checkpoint, EventStore, RecordedEvent};

/// Events read per query while selecting.
const PAGE: i64 = 500;

/// What the log holds after the selection checkpoint: the next batch's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub certificates: Vec<BatchItem>,
    pub revocations: Vec<BatchItem>,
    /// The last event considered: the new selection checkpoint.
    pub checkpoint: Checkpoint,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty() && self.revocations.is_empty()
    }
}

/// Reads the log after `after` (gap-safe, see `store/tail.rs`), at most `max_events` events, and sorts
/// every CertificateApproved and CertificateRevoked into the next batch.
///
/// - An approval is recorded, also when its holder's personal data was erased: the merit stands and
///   goes to Ladok under the Ladok UID; the files leave out what was erased (see `export/mod.rs`).
///   (Batches created before this rule may list such approvals as `refused`.)
/// - A revocation is a correction of an approval exported in an earlier batch.
/// - A certificate approved *and* revoked within the same selection was never exported: it gets
///   neither a record nor a correction.
pub async fn select(
    store: &EventStore,
    after: Checkpoint,
    max_events: usize,
) -> Result<Selection, WorkerError> {
    let mut checkpoint = after;
    // Log order, so the batch lists certificates in the order they were decided.
    let mut approved: Vec<(CertificateId, String)> = Vec::new();
    let mut revoked: Vec<(CertificateId, String)> = Vec::new();
    let mut read = 0usize;
    while read < max_events {
        let limit = PAGE.min((max_events - read) as i64);
        let page = store.read_after(checkpoint, limit).await?;
        let Some(last) = page.last() else { break };
        checkpoint = last.checkpoint;
        read += page.len();
        for event in &page {
            if !is_certificate_event(event) {
                continue;
            }
            match decode(event)? {
                PortfolioEvent::CertificateApproved(a) => {
                    approved.push((a.certificate_id, event.stream_id.clone()))
                }
                PortfolioEvent::CertificateRevoked(r) => {
                    revoked.push((r.certificate_id, event.stream_id.clone()))
                }
                _ => {}
            }
        }
    }
    let revoked_ids: std::collections::HashSet<CertificateId> =
        revoked.iter().map(|(id, _)| *id).collect();
    let approved_ids: std::collections::HashSet<CertificateId> =
        approved.iter().map(|(id, _)| *id).collect();
    let mut selection = Selection {
        checkpoint,
        ..Selection::default()
    };
    for (certificate_id, stream_id) in approved {
        if !revoked_ids.contains(&certificate_id) {
            selection.certificates.push(BatchItem {
                certificate_id,
                stream_id,
            });
        }
    }
    for (certificate_id, stream_id) in revoked {
        if !approved_ids.contains(&certificate_id) {
            selection.revocations.push(BatchItem {
                certificate_id,
                stream_id,
            });
        }
    }
    Ok(selection)
}

fn is_certificate_event(event: &RecordedEvent) -> bool {
    event.stream_id.starts_with("portfolio-")
        && matches!(
            event.event_type.as_str(),
            "CertificateApproved" | "CertificateRevoked"
        )
}

fn decode(event: &RecordedEvent) -> Result<PortfolioEvent, WorkerError> {
    crate::log::decode_portfolio(event).map_err(|_| WorkerError::UnreadableEvent {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
    })
}

/// A batch's certificates as far as they could be rebuilt from their portfolio streams.
#[derive(Debug, Clone, Default)]
pub struct LoadedBatch {
    pub certificates: Vec<ExportCertificate>,
    /// Certificates whose source events cannot be read or are missing, with the error's reason code:
    /// left out of the files and named in the manifest, so one broken certificate never holds up
    /// the others. Deterministic: the same events give the same list.
    pub withheld: Vec<(CertificateId, &'static str)>,
}

/// The certificates of a batch, rebuilt from their portfolio streams exactly as BatchCreated took
/// them: an approval without any later revocation, a revocation with its approval. Rendering them
/// again therefore gives the same bytes, however late a resumed run comes (an erasure in between
/// changes the events once and for good, see `export/mod.rs`). A certificate that cannot be rebuilt
/// is skipped and logged; [`load_batch`] says which.
pub async fn load_certificates(
    store: &EventStore,
    created: &BatchCreated,
) -> Result<Vec<ExportCertificate>, WorkerError> {
    let loaded = load_batch(store, created).await?;
    Ok(loaded.certificates)
}

/// Like [`load_certificates`], with the certificates that could not be rebuilt. Only reading the
/// log itself (the database) fails the whole batch.
pub async fn load_batch(
    store: &EventStore,
    created: &BatchCreated,
) -> Result<LoadedBatch, WorkerError> {
    let mut streams: HashMap<&str, Vec<RecordedEvent>> = HashMap::new();
    for item in created.certificates.iter().chain(&created.revocations) {
        if !streams.contains_key(item.stream_id.as_str()) {
            let events = store.read_stream(&item.stream_id, 0).await?;
            streams.insert(item.stream_id.as_str(), events);
        }
    }
    let find = |item: &BatchItem| -> Result<(CertificateApproved, Option<CertificateRevoked>), WorkerError> {
        let mut approved = None;
        let mut revoked = None;
        for event in &streams[item.stream_id.as_str()] {
            if !is_certificate_event(event) {
                continue;
            }
            match decode(event)? {
                PortfolioEvent::CertificateApproved(a) if a.certificate_id == item.certificate_id => {
                    approved = Some(a)
                }
                PortfolioEvent::CertificateRevoked(r) if r.certificate_id == item.certificate_id => {
                    revoked = Some(r)
                }
                _ => {}
            }
        }
        let approved = approved.ok_or(WorkerError::SourceMissing {
            certificate_id: item.certificate_id,
        })?;
        Ok((approved, revoked))
    };
    let build = |item: &BatchItem, revocation: bool| -> Result<ExportCertificate, WorkerError> {
        let (approved, revoked) = find(item)?;
        let revoked = match (revocation, revoked) {
            (false, _) => None,
            (true, Some(r)) => Some(r),
            (true, None) => {
                return Err(WorkerError::SourceMissing {
                    certificate_id: item.certificate_id,
                });
            }
        };
        Ok(ExportCertificate::new(&approved, revoked.as_ref())?)
    };
    let mut loaded = LoadedBatch::default();
    let items = created.certificates.iter().map(|item| (item, false));
    for (item, revocation) in items.chain(created.revocations.iter().map(|item| (item, true))) {
        match build(item, revocation) {
            Ok(certificate) => loaded.certificates.push(certificate),
            // The store failing is not this certificate's fault: the run stops and tries again.
            Err(e @ (WorkerError::Store(_) | WorkerError::Database(_))) => return Err(e),
            Err(e) => {
                let reason = withheld_reason(&e);
                // By id and reason code only: the error's text may come from personal data.
                tracing::error!(certificate_id = %item.certificate_id, reason,
                    "certificate left out of the batch's files");
                loaded.withheld.push((item.certificate_id, reason));
            }
        }
    }
    Ok(loaded)
}

/// The manifest's code for a certificate that could not be rebuilt.
fn withheld_reason(e: &WorkerError) -> &'static str {
    match e {
        WorkerError::UnreadableEvent { .. } => "source_unreadable",
        WorkerError::SourceMissing { .. } => "source_missing",
        _ => "source_invalid",
    }
}

/// Every file of the batch, the manifest last.
///
/// `written` is what the batch's stream records as written (name → sha256, size). The manifest lists
/// those files with their recorded hash, and also a recorded file that rendering no longer gives: a
/// file written before the holder was erased stays in the folder as written (a batch folder is never
/// rewritten), and the manifest must describe the folder, not what a render would give today.
pub fn render(
    created: &BatchCreated,
    loaded: &LoadedBatch,
    settings: &ExportSettings,
    written: &BTreeMap<String, (String, u64)>,
) -> Result<Vec<ExportFile>, ExportError> {
    let certificates = &loaded.certificates;
    let mut files = render_batch(certificates, settings, created.created_at)?;
    let mut listed: BTreeMap<&str, ManifestFile> = BTreeMap::new();
    for file in &files {
        let (sha256, size) = written
            .get(&file.name)
            .cloned()
            .unwrap_or_else(|| (sha256_hex(&file.bytes), file.bytes.len() as u64));
        listed.insert(&file.name, manifest_file(&file.name, sha256, size));
    }
    for (name, (sha256, size)) in written {
        if name != MANIFEST_FILE_NAME && !listed.contains_key(name.as_str()) {
            listed.insert(name, manifest_file(name, sha256.clone(), *size));
        }
    }
    let mut withheld: Vec<WithheldCertificate> = loaded
        .withheld
        .iter()
        .map(|(certificate_id, reason)| WithheldCertificate {
            certificate_id: *certificate_id,
            reason: (*reason).to_owned(),
        })
        .collect();
    withheld.sort_by_key(|w| w.certificate_id);
    let manifest = Manifest::list(
        created.batch_id,
        created.created_at,
        batch_counts(certificates),
        listed.into_values().collect(),
    )?
    .with_personal_data_erased(personal_data_erased(certificates))
    .with_withheld(withheld)
    .with_manual_steps(certificates.iter().map(|c| {
        (
            c.certificate_id(),
            crate::domain::batch::manual::manual_steps(c.is_revoked(), None),
        )
    }));
    files.push(ExportFile {
        name: MANIFEST_FILE_NAME.to_owned(),
        bytes: manifest.to_json(),
    });
    Ok(files)
}

fn manifest_file(name: &str, sha256: String, size: u64) -> ManifestFile {
    ManifestFile {
        name: name.to_owned(),
        size,
        sha256,
    }
}

/// Lower-case hex SHA-256, as the manifest and `sha256sum` state it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How many threads flush one step's files: flushes issued together share the file system's
/// journal commits, where one after another each waits for its own. `cim-bench`'s 10,000
/// certificates took 4.0–5.0 s to files with 8 threads and 3.4–4.0 s with 32 (64 gained nothing
/// more); the threads mostly wait on the disk.
const FLUSH_THREADS: usize = 32;

/// Writes each file to `dir/{name}` so that a reader never sees half a file: the bytes go to a
/// hidden temporary name in the same folder, are flushed to disk, and the file is renamed over the
/// final name (atomic on one file system); the folder is flushed once, after the renames, so they
/// are durable before an event says the files exist. Writing the same bytes again is harmless,
/// which is what a resumed batch does for files whose BatchFileWritten events were never appended.
/// A failure names the file.
pub fn write_atomically(dir: &Path, files: &[&ExportFile]) -> Result<(), (String, std::io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (String::new(), e))?;
    let write = |file: &ExportFile| -> std::io::Result<()> {
        let temporary = dir.join(format!(".{}.partial", file.name));
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(&file.bytes)?;
        out.sync_all()?;
        std::fs::rename(&temporary, dir.join(&file.name))
    };
    let per_thread = files.len().div_ceil(FLUSH_THREADS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .try_for_each(|f| write(f).map_err(|e| (f.name.clone(), e)))
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a file writer panicked"))
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| (String::new(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_only_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| ExportFile {
            name: name.to_owned(),
            bytes: bytes.to_vec(),
        };
        write_atomically(dir.path(), &[&file("a.txt", b"one")]).unwrap();
        write_atomically(dir.path(), &[&file("a.txt", b"two")]).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.txt"]);
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"two");
        // A step's many files, written by several threads: all there, no temporary left.
        let many: Vec<ExportFile> = (0..20).map(|i| file(&format!("f{i}"), b"x")).collect();
        write_atomically(dir.path(), &many.iter().collect::<Vec<_>>()).unwrap();
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 21);
    }
}
