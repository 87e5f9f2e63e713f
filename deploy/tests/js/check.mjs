// Published validators for scripts/check-deploy.sh (called by deploy/tests).
//
//   RA_NODE_MODULES=<dir>/node_modules node check.mjs < request.json
//
// request: {"objects": [<Kubernetes object>...], "promql": ["<expr>"...]}
// answer (stdout, JSON):
//   {"objects": [{"id", "validator", "ok", "errors"}],
//    "promql":  [{"expr", "ok", "errors", "metrics"}]}
//
// Objects are custom resources checked with the @kubernetes-models models,
// which are generated from the KEDA and prometheus-operator Go API types (the
// same types their CRDs are generated from). PromQL is parsed with
// @prometheus-io/lezer-promql, the grammar of the Prometheus web UI; every
// metric name a query selects is reported.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.RA_NODE_MODULES;
if (!modules) {
  console.error("RA_NODE_MODULES is not set");
  process.exit(2);
}
const load = (rel) => import(pathToFileURL(join(modules, rel)).href);

const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js", "ScaledObject"],
  "keda.sh/v1alpha1/TriggerAuthentication": ["@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication.js", "TriggerAuthentication"],
  "monitoring.coreos.com/v1/ServiceMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js", "ServiceMonitor"],
  "monitoring.coreos.com/v1/PrometheusRule": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule.js", "PrometheusRule"],
};
// Azure Managed Prometheus serves the prometheus-operator types under its own
// group: validate its ServiceMonitors with the upstream model.
const ALIASES = { "azmonitoring.coreos.com/v1": "monitoring.coreos.com/v1" };

async function checkObject(obj) {
  const id = `${obj.apiVersion}/${obj.kind}/${obj.metadata?.name}`;
  const apiVersion = ALIASES[obj.apiVersion] ?? obj.apiVersion;
  const entry = MODELS[`${apiVersion}/${obj.kind}`];
  if (!entry) return { id, validator: null, ok: false, errors: ["no published model for this kind"] };
  const [file, name] = entry;
  const Model = (await load(file))[name];
  const validator = `${file.split("/").slice(0, 2).join("/")} ${name}` + (apiVersion !== obj.apiVersion ? ` (as ${apiVersion})` : "");
  try {
    new Model({ ...obj, apiVersion }).validate();
    return { id, validator, ok: true, errors: [] };
  } catch (e) {
    const details = Array.isArray(e.errors)
      ? e.errors.map((x) => {
          const params = x.params ? JSON.stringify(x.params) : "";
          return `${x.instancePath || "/"} ${x.message}` + (params && params.length < 100 && x.keyword !== "pattern" ? ` ${params}` : "");
        })
      : [String(e.message)];
    return { id, validator, ok: false, errors: details };
  }
}

async function checkPromql(expr, parser) {
  const tree = parser.parse(expr);
  const errors = [];
  const metrics = new Set();
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push(`syntax error at ${node.from}: ${JSON.stringify(expr.slice(Math.max(0, node.from - 20), node.to + 20))}`);
      }
      if (node.name === "VectorSelector") {
        const id = node.node.getChild("Identifier");
        if (id) {
          metrics.add(expr.slice(id.from, id.to));
        } else {
          const text = expr.slice(node.from, node.to);
          const m = /__name__\s*=\s*"([^"]+)"/.exec(text);
          if (m) metrics.add(m[1]);
          else errors.push(`selector without a metric name: ${text}`);
        }
      }
    },
  });
  return { expr, ok: errors.length === 0, errors, metrics: [...metrics].sort() };
}

const request = JSON.parse(readFileSync(0, "utf8"));
const answer = { objects: [], promql: [] };
for (const obj of request.objects ?? []) answer.objects.push(await checkObject(obj));
if ((request.promql ?? []).length) {
  const { parser } = await load("@prometheus-io/lezer-promql/dist/index.es.js");
  for (const expr of request.promql) answer.promql.push(await checkPromql(expr, parser));
}
process.stdout.write(JSON.stringify(answer));
