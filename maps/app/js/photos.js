// Photos from the camera, made small on the tablet before they are kept and sent: decoded with
// the orientation the camera wrote, drawn at most ``maxSide`` pixels on the long side, and
// re-encoded as JPEG. Re-encoding drops the file's metadata (location, camera) here already; the
// server strips it again whatever comes. A 12-megapixel photo of 4 MB becomes about 300 kB,
// which is what a weak mobile link can carry.

const QUALITY = 0.85;

export class NotAPicture extends Error {}

/** ``file`` (a File from the 照片 control) as {blob, width, height, taken_at, name}. */
export async function shrink(file, maxSide) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (err) {
    throw new NotAPicture(file.name);
  }
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: QUALITY });
  // A camera's file is written when the photo is taken; a picked file keeps its own date.
  const taken = file.lastModified ? new Date(file.lastModified) : new Date();
  return { blob, width, height, taken_at: taken.toISOString(), name: file.name };
}

/** All the photos of a file control, shrunk; throws NotAPicture naming the first bad file. */
export async function shrinkAll(files, maxSide) {
  const out = [];
  for (const file of files) out.push(await shrink(file, maxSide));
  return out;
}
