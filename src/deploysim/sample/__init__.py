"""deploysim.sample"""
