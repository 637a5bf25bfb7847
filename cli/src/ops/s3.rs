//! The local stack's S3 service as the API uses it (`goodgo up --profile s3`): which
//! service serves S3 (a MinIO image; natively s3s-fs), whether it runs, and the settings
//! that point the API's listing photos at it (`GOODGO_S3_BUCKET` and the `AWS_*`
//! variables, docs/api.md).

use goodgo_compose::{Project, Service};
use goodgo_stack::native::{Kind, PHOTO_BUCKET, S3_REGION, S3Endpoint, image_kind, s3_endpoint};
use serde_json::json;

use crate::commands::Context;
use crate::ops::stack::{Loaded, present_runtimes};

/// A running S3 service of the stack.
pub struct RunningS3 {
    pub service: String,
    pub endpoint: S3Endpoint,
}

impl RunningS3 {
    /// The API's settings for photos on this server.
    pub fn api_env(&self) -> Vec<(String, String)> {
        self.endpoint.api_env()
    }

    /// One line for people: where, which bucket, which key (never the secret).
    pub fn describe(&self) -> String {
        format!(
            "{} at {} (bucket {PHOTO_BUCKET}, access key {})",
            self.service, self.endpoint.url, self.endpoint.access_key
        )
    }

    /// The same as data (never the secret).
    pub fn json(&self) -> serde_json::Value {
        json!({
            "service": self.service,
            "endpoint": self.endpoint.url,
            "bucket": PHOTO_BUCKET,
            "region": S3_REGION,
            "access_key_id": self.endpoint.access_key,
        })
    }
}

/// Whether `service` serves S3 (its image is MinIO's or names s3).
pub fn is_s3(service: &Service) -> bool {
    service.image.as_deref().and_then(image_kind) == Some(Kind::S3)
}

/// The S3 service `name` of `project`, as it was just started.
pub fn started(project: &Project, name: &str) -> Option<RunningS3> {
    let service = project.services.get(name).filter(|s| is_s3(s))?;
    Some(RunningS3 {
        service: service.name.clone(),
        endpoint: s3_endpoint(service),
    })
}

/// The project's S3 service when one runs, on either runtime (whatever profile started
/// it): `None` when the project has none or it is stopped.
pub async fn running(ctx: &Context, loaded: &Loaded) -> Option<RunningS3> {
    let candidates: Vec<&Service> = loaded
        .project
        .services
        .values()
        .filter(|s| is_s3(s))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    for runtime in present_runtimes(ctx, &loaded.name).await {
        let Ok(statuses) = runtime.status(&loaded.name, Some(&loaded.project)).await else {
            continue;
        };
        for s in candidates.iter() {
            if statuses
                .iter()
                .any(|st| st.service == s.name && st.state == "running")
            {
                return started(&loaded.project, &s.name);
            }
        }
    }
    None
}
