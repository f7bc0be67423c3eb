//! The eight a9s data services a control plane offers, and the names Klutch gives their
//! provider configurations, credentials Secrets and `configure` placeholders.

/// One a9s data service as the release bundles see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataService {
    /// Lower-case name used in object names, e.g. `postgresql`.
    pub name: &'static str,
    /// Upper-case name used in `${…}` placeholders, e.g. `POSTGRESQL`.
    pub var: &'static str,
    /// Plural of the claim that binds it, e.g. `postgresqlinstances`.
    pub claim_plural: &'static str,
}

/// The data services in Klutch v1.5's order.
pub const DATA_SERVICES: [DataService; 8] = [
    DataService {
        name: "postgresql",
        var: "POSTGRESQL",
        claim_plural: "postgresqlinstances",
    },
    DataService {
        name: "mongodb",
        var: "MONGODB",
        claim_plural: "mongodbinstances",
    },
    DataService {
        name: "mariadb",
        var: "MARIADB",
        claim_plural: "mariadbinstances",
    },
    DataService {
        name: "messaging",
        var: "MESSAGING",
        claim_plural: "messaginginstances",
    },
    DataService {
        name: "search",
        var: "SEARCH",
        claim_plural: "searchinstances",
    },
    DataService {
        name: "logme2",
        var: "LOGME2",
        claim_plural: "logme2instances",
    },
    DataService {
        name: "prometheus",
        var: "PROMETHEUS",
        claim_plural: "prometheusinstances",
    },
    DataService {
        name: "keyvalue",
        var: "KEYVALUE",
        claim_plural: "keyvalueinstances",
    },
];

/// The claims that are not data-service instances but are bindable all the same.
pub const OTHER_CLAIMS: [&str; 3] = ["servicebindings", "backups", "restores"];

/// Which endpoint of a data service a provider configuration talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The Open Service Broker (`serviceType: servicebroker`).
    ServiceBroker,
    /// The a9s Backup Manager (`serviceType: backupmanager`).
    BackupManager,
}

impl Endpoint {
    /// Both endpoints, broker first.
    pub const ALL: [Endpoint; 2] = [Endpoint::ServiceBroker, Endpoint::BackupManager];

    /// `service-broker` or `backup-manager`, as in object names.
    pub fn slug(self) -> &'static str {
        match self {
            Endpoint::ServiceBroker => "service-broker",
            Endpoint::BackupManager => "backup-manager",
        }
    }

    /// `SERVICE_BROKER` or `BACKUP_MANAGER`, as in placeholders.
    pub fn var(self) -> &'static str {
        match self {
            Endpoint::ServiceBroker => "SERVICE_BROKER",
            Endpoint::BackupManager => "BACKUP_MANAGER",
        }
    }

    /// The provider configuration's `serviceType`.
    pub fn service_type(self) -> &'static str {
        match self {
            Endpoint::ServiceBroker => "servicebroker",
            Endpoint::BackupManager => "backupmanager",
        }
    }

    /// The health-check path of the endpoint (a9s Backup Managers v68 and newer).
    pub fn health_check_endpoint(self) -> &'static str {
        match self {
            Endpoint::ServiceBroker => "/osb_ext/v1/healthy",
            Endpoint::BackupManager => "/v2/healthy",
        }
    }
}

impl DataService {
    /// Name of the ProviderConfig for an endpoint, e.g. `postgresql-service-broker`.
    pub fn provider_config_name(&self, endpoint: Endpoint) -> String {
        format!("{}-{}", self.name, endpoint.slug())
    }

    /// Name of the credentials Secret for an endpoint, e.g.
    /// `postgresql-service-broker-credentials`.
    pub fn credentials_secret_name(&self, endpoint: Endpoint) -> String {
        format!("{}-{}-credentials", self.name, endpoint.slug())
    }

    /// The placeholder names `configure` uses for an endpoint: URL, base64 user name and
    /// base64 password.
    pub fn placeholders(&self, endpoint: Endpoint) -> [String; 3] {
        let (svc, ep) = (self.var, endpoint.var());
        [
            format!("{svc}_{ep}_URL"),
            format!("BASE64ENCODED_{svc}_{ep}_USERNAME"),
            format!("BASE64ENCODED_{svc}_{ep}_PASSWORD"),
        ]
    }
}
