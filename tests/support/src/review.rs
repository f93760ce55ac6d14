//! The admission review both the in-process and the HTTPS benchmarks send: a Deployment as
//! `kubectl apply` creates it, about 5.9 KB (shared so their figures are about the same input).

use serde_json::{Value, json};

/// A CREATE review of a Deployment as kubectl apply sends it (last-applied annotation,
/// managedFields), using six of the inventory's sources.
pub fn deployment_review(namespace: &str) -> Value {
    let containers = json!([
        {"name": "web", "image": "registry.example.com/shop/web:1.42.0",
         "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
         "env": [{"name": "MODE", "value": "production"}, {"name": "REGION", "value": "eu-west-1"},
                 {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "secret-3", "key": "password"}}}],
         "envFrom": [{"configMapRef": {"name": "config-1"}}, {"secretRef": {"name": "secret-2"}}],
         "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
         "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
         "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
         "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}, {"name": "tls", "mountPath": "/tls", "readOnly": true}],
         "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "File"},
        {"name": "proxy", "image": "registry.example.com/shop/proxy:2.3.1",
         "envFrom": [{"configMapRef": {"name": "config-4"}}],
         "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
         "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "File"}
    ]);
    let spec = json!({
        "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "frontend", "version": "1.42.0"},
                         "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
            "spec": {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30,
                     "securityContext": {"runAsNonRoot": true},
                     "volumes": [{"name": "config", "configMap": {"name": "config-5", "defaultMode": 420}},
                                 {"name": "tls", "secret": {"secretName": "secret-6", "defaultMode": 420}}]}
        }
    });
    let last_applied = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"annotations": {"reloader.stakater.com/auto": "true"},
                     "labels": {"app": "web", "team": "shop"}, "name": "web", "namespace": namespace},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web", "tier": "frontend", "version": "1.42.0"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.example.com/shop/web:1.42.0",
                                                       "envFrom": [{"configMapRef": {"name": "config-1"}},
                                                                   {"secretRef": {"name": "secret-2"}}]},
                                                      {"name": "proxy", "image": "registry.example.com/shop/proxy:2.3.1"}]}}}
    });
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": namespace, "generation": 1,
            "uid": "2c7d5a4e-6a8b-4f1e-9f55-0d3c2b1a9e87", "creationTimestamp": "2026-01-12T09:30:00Z",
            "labels": {"app": "web", "team": "shop"},
            "annotations": {
                "reloader.stakater.com/auto": "true",
                "kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string()
            },
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2026-01-12T09:30:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {},
                                                              "f:reloader.stakater.com/auto": {}},
                                            "f:labels": {".": {}, "f:app": {}, "f:team": {}}},
                             "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
                                        "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                                        "f:template": {"f:metadata": {"f:annotations": {".": {}, "f:prometheus.io/port": {}, "f:prometheus.io/scrape": {}},
                                                                      "f:labels": {".": {}, "f:app": {}, "f:tier": {}, "f:version": {}}},
                                                       "f:spec": {"f:containers": {
                                                           "k:{\"name\":\"web\"}": {".": {}, "f:env": {".": {}, "k:{\"name\":\"MODE\"}": {".": {}, "f:name": {}, "f:value": {}},
                                                                                                "k:{\"name\":\"REGION\"}": {".": {}, "f:name": {}, "f:value": {}},
                                                                                                "k:{\"name\":\"DB_PASSWORD\"}": {".": {}, "f:name": {}, "f:valueFrom": {".": {}, "f:secretKeyRef": {}}}},
                                                                                     "f:envFrom": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:livenessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}}, "f:periodSeconds": {}},
                                                                                     "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}},
                                                                                     "f:readinessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}}, "f:periodSeconds": {}},
                                                                                     "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
                                                                                     "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
                                                                                     "f:volumeMounts": {".": {}, "k:{\"mountPath\":\"/etc/web\"}": {".": {}, "f:mountPath": {}, "f:name": {}},
                                                                                                        "k:{\"mountPath\":\"/tls\"}": {".": {}, "f:mountPath": {}, "f:name": {}, "f:readOnly": {}}}},
                                                           "k:{\"name\":\"proxy\"}": {".": {}, "f:envFrom": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                                                                                       "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}},
                                                                                       "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                                                                  "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {".": {}, "f:runAsNonRoot": {}},
                                                                  "f:terminationGracePeriodSeconds": {},
                                                                  "f:volumes": {".": {}, "k:{\"name\":\"config\"}": {".": {}, "f:configMap": {".": {}, "f:defaultMode": {}, "f:name": {}}, "f:name": {}},
                                                                                "k:{\"name\":\"tls\"}": {".": {}, "f:name": {}, "f:secret": {".": {}, "f:defaultMode": {}, "f:secretName": {}}}}}}}}
            }]
        },
        "spec": spec,
        "status": {}
    });
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web", "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}
