//! Kubernetes Events on consumer objects (sync errors such as a provider's validation message,
//! claim conflicts), posted in the background so that syncing never waits on them.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::observe::ObjectKey;

/// Posts Events with reporter `konnector` in the consumer cluster.
#[derive(Clone)]
pub struct EventSink {
    recorder: Recorder,
}

impl EventSink {
    /// A sink writing through `client`; `instance` is the pod name.
    pub fn new(client: kube::Client, instance: &str) -> Self {
        EventSink {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: "konnector".into(),
                    instance: Some(instance.to_owned()),
                },
            ),
        }
    }

    /// A Warning on `object` (only consumer objects get Events; the provider is not ours).
    pub fn warn(&self, object: &ObjectKey, reason: &str, message: &str) {
        if !object.consumer {
            return;
        }
        let reference = ObjectReference {
            api_version: Some(object.api_version.clone()),
            kind: Some(object.kind.clone()),
            namespace: object.namespace.clone(),
            name: Some(object.name.clone()),
            uid: object.uid.clone(),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            // Events hold at most 1 kB of note.
            note: Some(message.chars().take(1000).collect()),
            action: "Sync".into(),
            secondary: None,
        };
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %e, "posting an Event failed");
            }
        });
    }
}
