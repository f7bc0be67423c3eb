//! What this run created, so that a failure or Ctrl-C can leave the clusters as they were.

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject};

use crate::io::Io;

struct Created {
    api: Api<DynamicObject>,
    kind: String,
    name: String,
}

/// A journal of created objects, deleted newest first by [`Undo::rollback`].
pub struct Undo {
    client: kube::Client,
    created: Vec<Created>,
}

impl Undo {
    /// A journal whose [`created`](Self::created) objects live in the app cluster.
    pub fn new(client: kube::Client) -> Undo {
        Undo {
            client,
            created: Vec::new(),
        }
    }

    /// Records an object created in the app cluster.
    pub fn created(&mut self, resource: ApiResource, namespace: Option<&str>, name: &str) {
        let client = self.client.clone();
        self.created_in(client, resource, namespace, name);
    }

    /// Records an object created in another cluster (the provider).
    pub fn created_in(
        &mut self,
        client: kube::Client,
        resource: ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) {
        let api = match namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        };
        self.created.push(Created {
            api,
            kind: resource.kind,
            name: name.into(),
        });
    }

    /// Forgets everything (the run succeeded).
    pub fn commit(&mut self) {
        self.created.clear();
    }

    /// How many objects would be deleted.
    pub fn len(&self) -> usize {
        self.created.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
    }

    /// Deletes what was created, newest first; reports what it could not delete.
    pub async fn rollback(&mut self, io: &mut Io) {
        while let Some(created) = self.created.pop() {
            match created
                .api
                .delete(&created.name, &DeleteParams::background())
                .await
            {
                Ok(_) => io.progress(format!("↩️ Removed {} {}", created.kind, created.name)),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => io.warn(format!(
                    "could not remove {} {} created by this run: {}; delete it by hand",
                    created.kind,
                    created.name,
                    crate::error::one_line(&e)
                )),
            }
        }
    }
}
