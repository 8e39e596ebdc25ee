// Work batched per animation frame: however often `schedule` is called, `run` runs at most once
// per frame, on the next one. Map sources are updated through this (setData at most once per
// frame), and so are panels that follow fast-changing data.

export class FrameBatch {
  private pending = false;

  constructor(private readonly run: () => void) {}

  schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.run();
    });
  }
}
