"""The run kinds' recipes: each supplies only what differs (model, batches, one step,
validation, test, checkpoint meta); :mod:`memzoo.train.lifecycle` does the rest."""
