import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigValidationError, EnvSchema, validateEnv } from '../../src/config/env.schema.js';
import { parseDockerfile } from './dockerfile.js';
import {
  gatewayContainer,
  loadManifests,
  only,
  type Container,
  type PodDisruptionBudget,
  type Service,
} from './manifests.js';

const ROOT = process.cwd();

/** Every variable `.env.example` documents. */
function documentedVariables(): Set<string> {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8');
  return new Set([...text.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] as string));
}

/** The container's environment with each Secret reference replaced by `secret(key)`. */
function environment(container: Container, secret: (key: string) => string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    const value = ref ? secret(ref.key) : variable.value;
    if (value !== undefined) env[variable.name] = value;
  }
  return env;
}

function portNamed(container: Container, name: string): number {
  const port = container.ports?.find((p) => p.name === name)?.containerPort;
  assert.ok(port !== undefined, `the container declares a port named ${name}`);
  return port;
}

const image = parseDockerfile(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8')).stages.at(-1);

describe('the Kubernetes example', () => {
  const { deployment, container } = gatewayContainer(ROOT);
  const manifests = loadManifests(ROOT, 'gatehouse.yaml');
  const secret = only(loadManifests(ROOT, 'secret.example.yaml'), 'Secret');
  const generated = new Map<string, string>();
  const generatedSecret = (key: string): string => {
    if (!generated.has(key)) generated.set(key, randomBytes(32).toString('hex'));
    return generated.get(key) as string;
  };

  it('names only variables the gateway reads, with a configuration it accepts', () => {
    const documented = documentedVariables();
    for (const variable of container.env ?? []) {
      assert.ok(documented.has(variable.name), `${variable.name} is a Gatehouse variable (.env.example)`);
    }
    // Real secrets in place of the references; REDIS_URL as the example Secret has it.
    const env = environment(container, (key) =>
      key === 'REDIS_URL' ? secret.stringData?.[key] : generatedSecret(key),
    );
    assert.doesNotThrow(() => validateEnv(env));
  });

  it('refuses to start on the example Secret left unedited', () => {
    const env = environment(container, (key) => secret.stringData?.[key]);
    assert.throws(
      () => validateEnv(env),
      (err: unknown) => {
        assert.ok(err instanceof ConfigValidationError);
        for (const key of ['ADMIN_TOKEN', 'JAC_JWT_SECRET', 'METRICS_TOKEN']) {
          assert.ok(
            err.problems.some((p) => p.startsWith(`${key}:`)),
            `${key} is refused: ${err.problems.join('; ')}`,
          );
        }
        return true;
      },
    );
  });

  it('takes every secret from the Secret, and the Secret has each key', () => {
    const refs = (container.env ?? []).flatMap((v) => (v.valueFrom?.secretKeyRef ? [v.valueFrom.secretKeyRef] : []));
    assert.deepEqual(refs.map((r) => r.key).sort(), ['ADMIN_TOKEN', 'JAC_JWT_SECRET', 'METRICS_TOKEN', 'REDIS_URL']);
    for (const ref of refs) {
      assert.equal(ref.name, secret.metadata.name);
      assert.ok(ref.key in (secret.stringData ?? {}), `${ref.key} is in the example Secret`);
    }
    for (const name of ['ADMIN_TOKEN', 'JAC_JWT_SECRET', 'METRICS_TOKEN', 'REDIS_URL']) {
      assert.ok(!(container.env ?? []).some((v) => v.name === name && v.value !== undefined), `${name} is not plain`);
    }
  });

  it('lists the other Redis topologies as commented alternatives to REDIS_URL', () => {
    const text = readFileSync(join(ROOT, 'deploy/kubernetes/gatehouse.yaml'), 'utf8');
    // Optional variables are own keys of the schema too, so an instance lists every one read.
    const read = new Set([...Object.keys(new EnvSchema()), ...documentedVariables()]);
    for (const name of ['REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_CLUSTER_NODES']) {
      assert.match(text, new RegExp(`^\\s*# - name: ${name}$`, 'm'), `${name} is a commented alternative`);
      assert.ok(read.has(name), `${name} is a variable the gateway reads`);
    }
  });

  it('gives the drain its whole grace period: preStop sleep, then SHUTDOWN_GRACE_MS, then a margin', () => {
    const env = environment(container, generatedSecret);
    const graceMs = Number(env['SHUTDOWN_GRACE_MS'] ?? 5000);
    const preStop = container.lifecycle?.preStop?.sleep?.seconds;
    assert.ok(preStop !== undefined && preStop > 0, 'a preStop sleep lets the endpoint removal spread first');
    const termination = deployment.spec.template.spec.terminationGracePeriodSeconds;
    assert.ok(termination !== undefined, 'terminationGracePeriodSeconds is set');
    // docs/operations.md: a supervisor's kill timeout should exceed the grace by a second or two.
    assert.ok(
      termination * 1000 >= preStop * 1000 + graceMs + 2000,
      `terminationGracePeriodSeconds ${termination} s < preStop ${preStop} s + SHUTDOWN_GRACE_MS ${graceMs} ms + 2 s`,
    );
  });

  it('probes readiness on /health/ready and liveness on /health/live, on the main port', () => {
    assert.deepEqual(container.readinessProbe?.httpGet, { path: '/health/ready', port: 'http' });
    assert.deepEqual(container.livenessProbe?.httpGet, { path: '/health/live', port: 'http' });
    const env = environment(container, generatedSecret);
    assert.equal(portNamed(container, 'http'), Number(env['PORT']));
  });

  it('publishes the main, Felix and hatsu ports on their own numbers, and metrics on none', () => {
    const env = environment(container, generatedSecret);
    const service = only<Service>(manifests, 'Service');
    const byName = Object.fromEntries(service.spec.ports.map((p) => [p.name, p]));
    for (const [name, variable] of [
      ['http', 'PORT'],
      ['felix', 'FELIX_PORT'],
      ['hatsu', 'HATSU_PORT'],
    ] as const) {
      const port = portNamed(container, name);
      assert.equal(port, Number(env[variable]), `${variable} listens on the ${name} port`);
      assert.equal(byName[name]?.targetPort, name);
      // hatsu's /available offers HATSU_PORT itself: the Service must publish the same number.
      assert.equal(byName[name]?.port, port, `the Service publishes ${name} on ${port}`);
    }
    assert.equal(portNamed(container, 'metrics'), Number(env['METRICS_PORT']));
    assert.ok(!('metrics' in byName), 'the Service does not publish /metrics');
    const expose = (image?.instructions ?? [])
      .filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/).map(Number));
    for (const name of ['http', 'felix', 'hatsu']) {
      assert.ok(expose.includes(portNamed(container, name)), `the image EXPOSEs the ${name} port`);
    }
  });

  it('selects its own pods from the Service and the PodDisruptionBudget, which lets one go at a time', () => {
    const labels = deployment.spec.template.metadata.labels;
    const service = only<Service>(manifests, 'Service');
    const pdb = only<PodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    for (const selector of [
      deployment.spec.selector.matchLabels,
      service.spec.selector,
      pdb.spec.selector.matchLabels,
    ]) {
      for (const [key, value] of Object.entries(selector)) assert.equal(labels[key], value, key);
    }
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.ok(deployment.spec.replicas > 1, 'several replicas, so an eviction leaves some serving');
  });

  it('runs as the image user, not root', () => {
    const user = (image?.instructions ?? []).filter((i) => i.keyword === 'USER').at(-1)?.args ?? '';
    const [uid, gid] = user.split(':').map(Number);
    const pod = deployment.spec.template.spec.securityContext;
    assert.equal(pod?.runAsNonRoot, true);
    assert.equal(pod?.runAsUser, uid);
    assert.equal(pod?.runAsGroup, gid);
  });
});
