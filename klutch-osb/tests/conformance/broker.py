#!/usr/bin/env python3
"""A small Open Service Broker built on the `openbrokerapi` PyPI package (pinned in
requirements.txt), used by klutch-osb's conformance test as a broker implementation this project
did not write.

It listens on 127.0.0.1 on a free port and prints `PORT <n>` on stdout once ready.
Plans: `sync` completes everything synchronously; `async` completes asynchronously and needs
two polls per operation. Operation keys contain `+ = & % space` to check that the client echoes
them byte for byte: a wrong echo makes the operation `failed`.
"""

import logging
import sys
import threading

try:
    from openbrokerapi import api, errors
    from openbrokerapi.catalog import ServicePlan
    from openbrokerapi.service_broker import (
        Binding,
        BindState,
        DeprovisionServiceSpec,
        GetBindingSpec,
        GetInstanceDetailsSpec,
        LastOperation,
        OperationState,
        ProvisionedServiceSpec,
        ProvisionState,
        Service,
        ServiceBroker,
        UnbindSpec,
        UpdateServiceSpec,
    )
    from flask import Flask
    from werkzeug.serving import make_server
except ImportError as e:  # pragma: no cover - reported to the Rust harness
    print(f"IMPORT-ERROR {e}: run `pip install -r klutch-osb/tests/conformance/requirements.txt`", flush=True)
    sys.exit(3)

SERVICE_ID = "conf-svc-id"
SYNC_PLAN = "conf-sync-id"
ASYNC_PLAN = "conf-async-id"
POLLS_NEEDED = 2


class Broker(ServiceBroker):
    def __init__(self):
        self.lock = threading.Lock()
        self.instances = {}  # id -> dict(plan_id, params, op)
        self.bindings = {}  # (iid, bid) -> dict(op)
        self.counter = 0

    def catalog(self):
        return Service(
            id=SERVICE_ID,
            name="conformance-db",
            description="A database served by openbrokerapi",
            bindable=True,
            plan_updateable=True,
            instances_retrievable=True,
            bindings_retrievable=True,
            plans=[
                ServicePlan(id=SYNC_PLAN, name="sync", description="synchronous plan"),
                ServicePlan(id=ASYNC_PLAN, name="async", description="asynchronous plan"),
            ],
        )

    def _op(self, kind):
        self.counter += 1
        return {"key": f"op+{self.counter}={kind}&x%y z", "polls": 0, "kind": kind}

    def _advance(self, res, operation_data):
        op = res.get("op")
        if op is None:
            return LastOperation(OperationState.SUCCEEDED, "done")
        if operation_data != op["key"]:
            return LastOperation(OperationState.FAILED, f"operation key not echoed: {operation_data!r}")
        op["polls"] += 1
        if op["polls"] < POLLS_NEEDED:
            return LastOperation(OperationState.IN_PROGRESS, f"poll {op['polls']}")
        res["op"] = None
        return None

    # Instances

    def provision(self, instance_id, details, async_allowed, **kwargs):
        with self.lock:
            if not details.organization_guid or not details.space_guid:
                raise errors.ErrBadRequest("organization_guid and space_guid are required")
            if instance_id in self.instances:
                inst = self.instances[instance_id]
                if inst["plan_id"] == details.plan_id and inst["params"] == (details.parameters or {}):
                    return ProvisionedServiceSpec(ProvisionState.IDENTICAL_ALREADY_EXISTS, dashboard_url="http://dash")
                raise errors.ErrInstanceAlreadyExists()
            is_async = details.plan_id == ASYNC_PLAN
            if is_async and not async_allowed:
                raise errors.ErrAsyncRequired()
            op = self._op("provision") if is_async else None
            self.instances[instance_id] = {"plan_id": details.plan_id, "params": details.parameters or {}, "op": op}
            if op:
                return ProvisionedServiceSpec(ProvisionState.IS_ASYNC, dashboard_url="http://dash", operation=op["key"])
            return ProvisionedServiceSpec(ProvisionState.SUCCESSFUL_CREATED, dashboard_url="http://dash")

    def update(self, instance_id, details, async_allowed, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                raise errors.ErrBadRequest("unknown instance")
            if details.plan_id:
                inst["plan_id"] = details.plan_id
            if details.parameters:
                inst["params"].update(details.parameters)
            if inst["plan_id"] == ASYNC_PLAN:
                if not async_allowed:
                    raise errors.ErrAsyncRequired()
                inst["op"] = self._op("update")
                return UpdateServiceSpec(True, operation=inst["op"]["key"])
            return UpdateServiceSpec(False)

    def deprovision(self, instance_id, details, async_allowed, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                raise errors.ErrInstanceDoesNotExist()
            if inst["plan_id"] == ASYNC_PLAN:
                if not async_allowed:
                    raise errors.ErrAsyncRequired()
                inst["op"] = self._op("deprovision")
                return DeprovisionServiceSpec(True, operation=inst["op"]["key"])
            del self.instances[instance_id]
            return DeprovisionServiceSpec(False)

    def get_instance(self, instance_id, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None or (inst["op"] and inst["op"]["kind"] == "provision"):
                raise errors.ErrInstanceDoesNotExist()
            return GetInstanceDetailsSpec(SERVICE_ID, inst["plan_id"], "http://dash", inst["params"])

    def last_operation(self, instance_id, operation_data, service_id=None, plan_id=None, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                raise errors.ErrInstanceDoesNotExist()
            kind = inst["op"]["kind"] if inst.get("op") else None
            result = self._advance(inst, operation_data)
            if result is not None:
                return result
            if kind == "deprovision":
                del self.instances[instance_id]
                raise errors.ErrInstanceDoesNotExist()
            return LastOperation(OperationState.SUCCEEDED, "done")

    # Bindings

    def bind(self, instance_id, binding_id, details, async_allowed, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                raise errors.ErrBadRequest("unknown instance")
            if (instance_id, binding_id) in self.bindings:
                raise errors.ErrBindingAlreadyExists()
            is_async = inst["plan_id"] == ASYNC_PLAN and async_allowed
            op = self._op("bind") if is_async else None
            self.bindings[(instance_id, binding_id)] = {"op": op}
            if op:
                return Binding(BindState.IS_ASYNC, operation=op["key"])
            return Binding(credentials=self._creds(instance_id, binding_id))

    def _creds(self, instance_id, binding_id):
        return {"username": f"u-{binding_id}", "password": "pw", "host": "db.local", "port": 5432,
                "uri": f"postgres://u-{binding_id}:pw@db.local:5432/{instance_id}"}

    def get_binding(self, instance_id, binding_id, **kwargs):
        with self.lock:
            b = self.bindings.get((instance_id, binding_id))
            if b is None or b["op"]:
                raise errors.ErrBindingDoesNotExist()
            return GetBindingSpec(credentials=self._creds(instance_id, binding_id))

    def unbind(self, instance_id, binding_id, details, async_allowed, **kwargs):
        with self.lock:
            if (instance_id, binding_id) not in self.bindings:
                raise errors.ErrBindingDoesNotExist()
            del self.bindings[(instance_id, binding_id)]
            return UnbindSpec(False)

    def last_binding_operation(self, instance_id, binding_id, operation_data, service_id=None, plan_id=None, **kwargs):
        with self.lock:
            b = self.bindings.get((instance_id, binding_id))
            if b is None:
                return LastOperation(OperationState.FAILED, "unknown binding")
            result = self._advance(b, operation_data)
            return result if result is not None else LastOperation(OperationState.SUCCEEDED, "done")


def main():
    logging.basicConfig(level=logging.WARNING)
    app = Flask("conformance-broker")
    app.register_blueprint(
        api.get_blueprint(Broker(), api.BrokerCredentials("admin", "conformance"), logging.getLogger("broker"))
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
