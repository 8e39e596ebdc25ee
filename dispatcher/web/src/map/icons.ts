// Small images drawn once on a canvas and registered with the map (no sprite server needed).
// SDF images take their colour from the layer, so one arrow serves every status.

import type { Map as MlMap } from 'maplibre-gl';

function draw(size: number, paint: (c: CanvasRenderingContext2D, s: number) => void): ImageData {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const c = canvas.getContext('2d');
  if (!c) throw new Error('no 2d canvas');
  paint(c, size);
  return c.getImageData(0, 0, size, size);
}

/** `heading-arrow`: a chevron at the top edge, pointing north (rotated by heading). */
export function addIcons(map: MlMap): void {
  if (!map.hasImage('heading-arrow')) {
    const img = draw(48, (c, s) => {
      c.fillStyle = '#000';
      c.beginPath();
      c.moveTo(s / 2, 1);
      c.lineTo(s / 2 + 9, 15);
      c.lineTo(s / 2, 11);
      c.lineTo(s / 2 - 9, 15);
      c.closePath();
      c.fill();
    });
    map.addImage('heading-arrow', img, { pixelRatio: 2, sdf: true });
  }
  if (!map.hasImage('restaurant')) {
    const img = draw(28, (c, s) => {
      c.fillStyle = '#000';
      const r = 5;
      c.beginPath();
      c.roundRect(2, 2, s - 4, s - 4, r);
      c.fill();
    });
    map.addImage('restaurant', img, { pixelRatio: 2, sdf: true });
  }
}
