// The browser's camera (src/viewer/camera.ts, built to lib/viewer/camera.js)
// against a table of cases computed by the Python core's level rule and tile
// grid (bioimnb.core.tiles).  Run by tests/core/test_tiles_camera.py, which
// writes the table and copies the built module next to this file as
// camera.mjs:  CAMERA_CASES=cases.json node --test camera.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Camera, levelForZoom, levelGeometry } from './camera.mjs';

const cases = JSON.parse(fs.readFileSync(process.env.CAMERA_CASES, 'utf8'));

test('the table is not empty', () => {
  assert.ok(cases.levels.length >= 1000);
  assert.ok(cases.views.length >= 500);
});

test('downsamples are the core TileRenderer.downsamples', () => {
  for (const c of cases.views) {
    const g = levelGeometry(c.shapes, c.tile_size);
    assert.deepEqual(
      g.map(l => [l.sy, l.sx]),
      c.downsamples,
      `shapes ${JSON.stringify(c.shapes)}`
    );
  }
});

test('levelForZoom is the core level_for_zoom', () => {
  for (const c of cases.levels) {
    assert.equal(
      levelForZoom(c.downsamples, c.zoom, c.pixel_ratio),
      c.level,
      `downsamples ${JSON.stringify(c.downsamples)} zoom ${c.zoom} pixel ratio ${c.pixel_ratio}`
    );
  }
});

test('camera: viewport, target level and visible tiles are the core ones', () => {
  for (const c of cases.views) {
    const cam = new Camera();
    cam.setImage(c.shapes, c.tile_size);
    cam.resize(c.width, c.height, c.pixel_ratio);
    cam.fitMode = false;
    cam.zoom = c.zoom;
    cam.cx = c.cx;
    cam.cy = c.cy;
    const where = JSON.stringify({ ...c, ranges: undefined });
    assert.deepEqual(cam.viewRect(), c.rect, where);
    assert.equal(cam.targetLevel(), c.level, where);
    c.ranges.forEach((expected, level) => {
      const r = cam.tileRange(level);
      assert.deepEqual(r === null ? null : [r.tx0, r.tx1, r.ty0, r.ty1], expected, `level ${level} of ${where}`);
    });
  }
});

test('fit: the whole image is in view, centred', () => {
  for (const c of cases.views.slice(0, 200)) {
    const cam = new Camera();
    cam.setImage(c.shapes, c.tile_size);
    cam.resize(c.width, c.height, c.pixel_ratio);
    cam.fit();
    const [x0, y0, x1, y1] = cam.viewRect();
    const [h0, w0] = c.shapes[0];
    const eps = 1e-9 * Math.max(w0, h0);
    assert.ok(x0 <= eps && y0 <= eps && x1 >= w0 - eps && y1 >= h0 - eps, JSON.stringify({ c, r: [x0, y0, x1, y1] }));
    assert.ok(Math.abs((x0 + x1) / 2 - w0 / 2) <= eps && Math.abs((y0 + y1) / 2 - h0 / 2) <= eps);
    assert.ok(Math.min(-x0, -y0) <= eps, 'one side fills the screen');
  }
});
