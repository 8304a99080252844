"""test.py's loop: run the generator over --num_test images and write the results page, the
images and the results manifest (engine.results)."""
from __future__ import annotations

from pathlib import Path

from engine.context import open_run
from engine.storage import storage_errors_as_user_errors
from options.base_options import check_run_name
from util.fileio import check_writable_folder
from util.errors import UserError
from util.progress import progress, write


def run_test(opt) -> Path:
    """Upstream test.py: results/NAME/{phase}_{epoch}/index.html plus images/ and manifest.json;
    returns the page."""
    from data import create_dataset
    from engine.results import ResultsWriter, results_dir_for
    from engine.setup import prepare_model, record_options

    check_run_name(opt.name)
    check_writable_folder(results_dir_for(opt), "--results_dir")
    with open_run(opt) as ctx, storage_errors_as_user_errors("test.py stopped; the page shows the images done"):
        if ctx.is_distributed:
            raise UserError("test.py runs in one process; start it without torchrun")
        dataset = create_dataset(opt, pin_memory=ctx.pin_memory)
        description = dataset.dataset.describe()
        model = prepare_model(opt, ctx, description)
        record_options(opt, ctx)
        web_dir = results_dir_for(opt)
        print(f"creating web directory {web_dir}")
        results = ResultsWriter(opt, description, model, web_dir)
        if opt.eval:
            model.eval()
        total = int(min(len(dataset), opt.num_test))
        try:
            for i, data in enumerate(progress(dataset, total=total, desc="test images", unit="image")):
                if i >= opt.num_test:
                    break
                model.set_input(data)
                model.test()
                if i % 5 == 0:
                    write(f"processing ({i:04d})-th image... {model.get_image_paths()}")
                results.add(data, model)
        except BaseException:  # a bad image, a full disk, Ctrl-C: the page shows what was done
            if results.manifest.items:
                try:
                    page = results.save_page()
                    write(f"stopped after {len(results.manifest.items)} of {total} images; their page: {page}")
                except OSError:
                    pass
            raise
        return results.save()
