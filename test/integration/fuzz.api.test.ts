// Whatever the schema accepts, storage takes: fuzzed create/patch bodies against Azurite never
// get a 500 — a 2xx that reads back as sent, or a 4xx that names the problem.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { connectionsCollection } from '../../functions/connectionsCollection';
import { exportItem } from '../../functions/exportItem';
import { exportsCollection } from '../../functions/exportsCollection';
import { connectionSegments } from '../../functions/connectionSegments';
import { connectionTest } from '../../functions/connectionTest';
import { exportDetach } from '../../functions/exportDetach';
import { exportDuplicate } from '../../functions/exportDuplicate';
import { exportPreview } from '../../functions/exportPreview';
import { exportRestore } from '../../functions/exportRestore';
import { exportRetryCleanup } from '../../functions/exportRetryCleanup';
import { exportRun } from '../../functions/exportRun';
import { exportRuns } from '../../functions/exportRuns';
import { runCancel } from '../../functions/runCancel';
import { runItem } from '../../functions/runItem';
import { runRejectedReport } from '../../functions/runRejectedReport';
import { exportVerify } from '../../functions/exportVerify';
import { runRepair } from '../../functions/runRepair';
import { runDriftReport } from '../../functions/runDriftReport';
import { sourceSegments, sourcesList } from '../../functions/sources';
import { services } from '../../shared/services';
import { call, useAzurite } from '../helpers/app';

useAzurite();

/** Text with what storage keys and properties dislike: / \ # ?, control characters, lone surrogates, astral characters. */
const nasty = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength, unit: 'binary' }),
    fc.string({
      maxLength,
      unit: fc.constantFrom(
        '/',
        '\\',
        '#',
        '?',
        '\u0000',
        '\u001f',
        '\u007f',
        '\u0085',
        '\ud800',
        '\udfff',
        '😀',
        'é',
        ' ',
        "'",
        '"',
        '%',
        'a',
      ),
    }),
  );

const statusOk = (status: number) => status < 500;

describe('fuzzed bodies never get a 500', () => {
  it('connections: create and rename', async () => {
    await fc.assert(
      fc.asyncProperty(nasty(140), nasty(140), async (name, rename) => {
        const created = await call(connectionsCollection, {
          method: 'POST',
          path: 'connections',
          body: { displayName: name, restEndpoint: 'rest.iad-03.braze.com', apiKey: 'fuzz-key-0123456789', consent: true },
        });
        expect(created.status, JSON.stringify(created.body)).toSatisfy(statusOk);
        if (created.status !== 201) return;
        expect(created.body.displayName).toBe(name.trim());
        const renamed = await call(connectionItem, {
          method: 'PATCH',
          path: `connections/${created.body.id}`,
          params: { id: created.body.id },
          body: { displayName: rename },
        });
        expect(renamed.status, JSON.stringify(renamed.body)).toSatisfy(statusOk);
        // Names stay unique whatever they hold: the same name again is a 409.
        const again = await call(connectionsCollection, {
          method: 'POST',
          path: 'connections',
          body: {
            displayName: renamed.status === 200 ? rename : name,
            restEndpoint: 'rest.iad-03.braze.com',
            apiKey: 'fuzz-key-0123456789',
            consent: true,
          },
        });
        expect(again.status).toBe(409);
        await call(connectionItem, { method: 'DELETE', path: `connections/${created.body.id}`, params: { id: created.body.id } });
      }),
      { numRuns: 60 },
    );
  }, 120_000);

  it('exports: create and patch, up to the schema limits', async () => {
    const conn = await call(connectionsCollection, {
      method: 'POST',
      path: 'connections',
      body: { displayName: 'Fuzz target', restEndpoint: 'rest.iad-03.braze.com', apiKey: 'fuzz-key-0123456789', consent: true },
    });
    const connectionId = conn.body.id as string;
    const segments = fc.uniqueArray(nasty(256), { maxLength: 100 });
    const attributes = fc.dictionary(nasty(255), nasty(256), { maxKeys: 100 });
    await fc.assert(
      fc.asyncProperty(
        nasty(256),
        nasty(420),
        segments,
        attributes,
        nasty(140),
        async (name, folder, segs, attrs, aliasLabel) => {
          const body = {
            name,
            connectionId,
            brazeSegmentApiId: 'seg-1',
            source: { container: 'ci-exports', folder },
            segments: segs,
            matching: {
              profileId: 'CustomerId',
              email: 'PrimaryEmail',
              brazeCustomerId: 'BrazeUserId',
              attributes: attrs,
              aliasLabel,
            },
          };
          const created = await call(exportsCollection, { method: 'POST', path: 'exports', body });
          expect(created.status, JSON.stringify(created.body).slice(0, 500)).toSatisfy(statusOk);
          if (created.status !== 201) return;
          const read = await call(exportItem, {
            method: 'GET',
            path: `exports/${created.body.id}`,
            params: { id: created.body.id },
          });
          expect(read.body.matching.attributes).toEqual(created.body.matching.attributes);
          const patched = await call(exportItem, {
            method: 'PATCH',
            path: `exports/${created.body.id}`,
            params: { id: created.body.id },
            body: { name: folder, segments: segs.slice(0, 1) },
          });
          expect(patched.status, JSON.stringify(patched.body).slice(0, 500)).toSatisfy(statusOk);
        },
      ),
      { numRuns: 60 },
    );
  }, 180_000);

  it('the largest definition the schema accepts is stored and read back whole', async () => {
    const conn = await call(connectionsCollection, {
      method: 'POST',
      path: 'connections',
      body: { displayName: 'Largest', restEndpoint: 'rest.iad-03.braze.com', apiKey: 'fuzz-key-0123456789', consent: true },
    });
    const attributes = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [
        `${'a'.repeat(250)}${String(i).padStart(3, '0')}`,
        `${'C'.repeat(253)}${String(i).padStart(3, '0')}`,
      ]),
    );
    const segments = Array.from({ length: 100 }, (_, i) => `${'S'.repeat(253)}${String(i).padStart(3, '0')}`);
    const body = {
      name: 'N'.repeat(256),
      connectionId: conn.body.id,
      brazeSegmentApiId: 'seg-1',
      source: { container: 'ci-exports', folder: 'f'.repeat(400) },
      segments,
      matching: { profileId: 'CustomerId', email: 'PrimaryEmail', brazeCustomerId: 'BrazeUserId', attributes },
    };
    const created = await call(exportsCollection, { method: 'POST', path: 'exports', body });
    expect(created.status).toBe(201);
    const read = await call(exportItem, { method: 'GET', path: `exports/${created.body.id}`, params: { id: created.body.id } });
    expect(read.body.segments).toEqual(segments);
    expect(read.body.matching.attributes).toEqual(attributes);
  });
});

describe('fuzzed paths and queries never get a 500', () => {
  /** Every route with an id in its path, with the methods it answers. */
  const routes: [string, Parameters<typeof call>[0], string, string[]][] = [
    ['exports/{id}', exportItem, 'id', ['GET', 'PATCH', 'DELETE']],
    ['exports/{id}/run', exportRun, 'id', ['POST']],
    ['exports/{id}/preview', exportPreview, 'id', ['POST']],
    ['exports/{id}/detach', exportDetach, 'id', ['POST']],
    ['exports/{id}/duplicate', exportDuplicate, 'id', ['POST']],
    ['exports/{id}/runs', exportRuns, 'id', ['GET']],
    ['exports/{id}/retry-cleanup', exportRetryCleanup, 'id', ['POST']],
    ['exports/{id}/restore', exportRestore, 'id', ['POST']],
    ['connections/{id}', connectionItem, 'id', ['GET', 'PATCH', 'DELETE']],
    ['connections/{id}/test', connectionTest, 'id', ['POST']],
    ['connections/{id}/segments', connectionSegments, 'id', ['GET']],
    ['runs/{runId}', runItem, 'runId', ['GET']],
    ['runs/{runId}/cancel', runCancel, 'runId', ['POST']],
    ['runs/{runId}/rejected', runRejectedReport, 'runId', ['GET']],
    ['exports/{id}/verify', exportVerify, 'id', ['POST']],
    ['runs/{runId}/repair', runRepair, 'runId', ['POST']],
    ['runs/{runId}/drift', runDriftReport, 'runId', ['GET']],
  ];
  /** Ids close to real ones (a UUID, a run id) and anything else. */
  const ids = fc.oneof(
    nasty(80),
    fc.uuid(),
    fc.uuid().map((u) => `${u}.${'0'.repeat(13)}abcdef`),
    fc.tuple(fc.uuid(), nasty(20)).map(([u, tail]) => `${u}${tail}`),
    fc.constantFrom('', '.', '..', 'a/b', 'run-all', '%2F', "' or 1=1 --", "PartitionKey eq 'x'"),
  );

  it('every route with an id, every method, any id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), ids, async ([route, handler, param, methods], id) => {
        for (const method of methods) {
          const res = await call(handler, {
            method,
            path: route,
            params: { [param]: id },
            body: method === 'PATCH' ? { name: 'x' } : undefined,
          });
          expect(res.status, `${method} ${route} ${JSON.stringify(id)}: ${JSON.stringify(res.body)}`).toSatisfy(statusOk);
        }
      }),
      { numRuns: 150 },
    );
  }, 120_000);

  it('source discovery: any container and folder', async () => {
    await services().storage.ciBlobs.getContainerClient('ci-exports').createIfNotExists();
    const containers = fc.oneof(nasty(70), fc.constantFrom('ci-exports', 'no-such-container', 'a', 'ab', '$root', '$logs'));
    await fc.assert(
      fc.asyncProperty(containers, nasty(500), async (container, folder) => {
        const list = await call(sourcesList, { method: 'GET', path: 'sources', query: { container } });
        expect(list.status, JSON.stringify(list.body)).toSatisfy(statusOk);
        const described = await call(sourceSegments, { method: 'GET', path: 'sources/segments', query: { container, folder } });
        expect(described.status, JSON.stringify(described.body)).toSatisfy(statusOk);
      }),
      { numRuns: 80 },
    );
  }, 120_000);
});
