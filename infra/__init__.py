"""Infrastructure definitions: the one description of NanoGen's AWS resources.

Used by the deployment template and by the local stack, so the two cannot
drift. Not deployed with the Lambdas.
"""
