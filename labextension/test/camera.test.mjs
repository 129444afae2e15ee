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

function camera(shapes, width, height, pixelRatio = 1, tileSize = 256) {
  const cam = new Camera();
  cam.setImage(shapes, tileSize);
  cam.resize(width, height, pixelRatio);
  cam.fit();
  return cam;
}

test('zoomAt keeps the image point under the cursor; zoom and centre stay within limits', () => {
  const cam = camera([[6000, 8000], [3000, 4000], [1500, 2000]], 800, 600);
  assert.equal(cam.zoom, 0.1);
  const before = cam.toImage(200, 150);
  cam.zoomAt(3, 200, 150);
  const after = cam.toImage(200, 150);
  assert.ok(Math.abs(after[0] - before[0]) < 1e-9 && Math.abs(after[1] - before[1]) < 1e-9);
  assert.equal(cam.fitMode, false);
  cam.zoomAt(1e9, 400, 300);
  assert.equal(cam.zoom, 64); // max(64, 2 x fit)
  cam.zoomAt(1e-9, 400, 300);
  assert.equal(cam.zoom, 0.1 / 4); // a quarter of fit
  cam.moveTo(-50, 1e9);
  assert.deepEqual([cam.cx, cam.cy], [0, 6000]);
  cam.fit();
  assert.deepEqual([cam.cx, cam.cy, cam.zoom, cam.fitMode], [4000, 3000, 0.1, true]);
  cam.resize(1600, 600, 1); // a fitted view is refitted
  assert.equal(cam.zoom, 0.1);
  cam.resize(1600, 1200, 1);
  assert.equal(cam.zoom, 0.2);
});

test('the target level follows zoom and pixel ratio', () => {
  const cam = camera([[6000, 8000], [3000, 4000], [1500, 2000]], 800, 600);
  cam.lookAt(0.25, null, null);
  assert.equal(cam.targetLevel(), 2);
  cam.resize(800, 600, 2);
  assert.equal(cam.targetLevel(), 1); // a 2x screen shows level 1's pixels 1:1
  cam.resize(800, 600, 3);
  assert.equal(cam.targetLevel(), 1); // counted as 2x
  cam.lookAt(2, null, null);
  assert.equal(cam.targetLevel(), 0);
});

test('wanted: every coarse tile first (small coarsest level), then visible target tiles nearest the centre first', () => {
  const cam = camera([[6000, 8000], [3000, 4000], [750, 1000]], 800, 600);
  cam.lookAt(1, 1000, 1000);
  const target = cam.targetLevel();
  assert.equal(target, 0);
  const wanted = cam.wanted(target);
  const coarse = wanted.filter(p => p.level === 2);
  assert.equal(coarse.length, 4 * 3); // 1000 x 750 in 256-tiles
  assert.deepEqual(wanted.slice(0, coarse.length), coarse);
  const fine = wanted.slice(coarse.length);
  assert.ok(fine.every(p => p.level === 0));
  const r = cam.tileRange(0);
  assert.equal(fine.length, (r.tx1 - r.tx0 + 1) * (r.ty1 - r.ty0 + 1));
  for (let i = 1; i < fine.length; i++) {
    assert.ok(fine[i - 1].d <= fine[i].d);
  }
  // Tile 3 (768..1024, centre 896) is nearer to 1000 than tile 4 (centre 1152).
  assert.deepEqual([fine[0].tx, fine[0].ty], [3, 3]);
});

test('a large coarsest level asks only for its visible tiles', () => {
  const cam = camera([[100000, 100000]], 800, 600);
  cam.lookAt(1, 50000, 50000);
  const wanted = cam.wanted(cam.targetLevel());
  assert.ok(wanted.length <= 5 * 4, String(wanted.length));
});

test('tile screen rectangles of neighbours touch (no seams)', () => {
  const cam = camera([[6000, 8000], [3000, 4000]], 800, 600, 1.5);
  cam.lookAt(0.37, 3001.3, 2999.7);
  for (const level of [0, 1]) {
    const r = cam.tileRange(level);
    for (let ty = r.ty0; ty <= r.ty1; ty++) {
      for (let tx = r.tx0; tx < r.tx1; tx++) {
        assert.equal(cam.tileScreenRect(level, tx, ty)[2], cam.tileScreenRect(level, tx + 1, ty)[0]);
      }
    }
  }
});
